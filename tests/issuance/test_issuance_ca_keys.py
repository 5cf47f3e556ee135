"""The CA interface (requests, proof of possession, the encryption key
envelope) and the key sources' WRITE KEY bodies (PSAM, security module in
steps, development key file)."""

from __future__ import annotations

import datetime as dt

import pytest
from issuance_helpers import ACTOR, StockCard, order_for, psam_source

from apdu.errors import InvalidInput, KeySourceError
from card_model.demo import demo_ca, demo_key_set
from card_model.keyload import unwrap_secret
from card_model.keys import Algorithm, KeyRole, block_key
from sm_crypto.ca import TestCa
from sm_crypto.envelope import open_private_key
from sm_crypto.errors import InvalidKeyError
from sm_crypto.sm2 import Sm2PrivateKey
from sm_crypto.x509 import verify_chain
from terminal import flows
from terminal.flows.issuance import issue_card
from terminal.issuance import CertificateAuthorityError, CertificateRequest, LocalTestCa, proof_message
from terminal.issuance.ca import PROOF_PREFIX, IssuedCertificates
from terminal.journal_hook import MemoryJournal
from terminal.keysource import (
    DevKeyFileKeySource,
    DevKeysWarning,
    HsmConversation,
    HsmKeySource,
    HsmRequest,
    SoftwareHsm,
)
from terminal.keysource.hsm import parse_answer
from terminal.registry import Journal, Registry

CARD_ID = "110102D1560000051342A7D2CDFACC19"
FACTOR = bytes.fromhex(CARD_ID[16:])
Opened = tuple[Registry, Journal]


def _request(
    key: Sm2PrivateKey, *, card_number: str = "X00000019", signer: Sm2PrivateKey | None = None
) -> CertificateRequest:
    public = key.public_key().to_bytes()
    proof = (signer or key).sign(PROOF_PREFIX + proof_message(CARD_ID, card_number, public))
    return CertificateRequest(
        CARD_ID,
        card_number,
        "北京市人力资源和社会保障局",
        dt.date(2025, 3, 1),
        dt.date(2035, 2, 28),
        public,
        proof,
    )


def test_local_ca_issues_both_certificates_and_the_envelope() -> None:
    ca = LocalTestCa()
    card_key = Sm2PrivateKey.generate()
    issued = ca.issue(_request(card_key))
    assert ca.anchors == (demo_ca().certificate,) and ca.requests == 1
    sign, encrypt = issued.signature_certificate, issued.encryption_certificate
    assert sign.public_key == card_key.public_key()
    assert "serialNumber" not in repr(issued) and "envelope" not in repr(issued)
    at = sign.not_before + dt.timedelta(seconds=1)
    verify_chain(sign, [], list(ca.anchors), at, required_key_usage=("digital_signature",))
    verify_chain(encrypt, [], list(ca.anchors), at)
    assert sign.not_before.date() == dt.date(2025, 2, 28)  # 00:00 Beijing time is 16:00 UTC the day before
    assert open_private_key(card_key, issued.encryption_key_envelope).public_key() == encrypt.public_key
    assert isinstance(issued, IssuedCertificates)
    assert _request(card_key).to_dict()["card_id"] == CARD_ID


def test_ca_refusals() -> None:
    ca = LocalTestCa()
    key = Sm2PrivateKey.generate()
    with pytest.raises(CertificateAuthorityError) as proof:
        ca.issue(_request(key, signer=Sm2PrivateKey.generate()))
    assert proof.value.exit_code == 9 and proof.value.national_code == -1502
    moved = _request(key)
    with pytest.raises(CertificateAuthorityError):  # a proof made for another card number
        ca.issue(
            CertificateRequest(
                CARD_ID,
                "X00000027",
                moved.issuer_name,
                moved.not_before,
                moved.not_after,
                moved.public_key,
                moved.proof,
            )
        )
    with pytest.raises(CertificateAuthorityError):
        CertificateRequest(
            CARD_ID.lower(), "X00000019", "", dt.date(2025, 1, 1), dt.date(2026, 1, 1), bytes(65), bytes(64)
        )
    with pytest.raises(CertificateAuthorityError):
        CertificateRequest(
            CARD_ID, "X00000019", "", dt.date(2026, 1, 1), dt.date(2025, 1, 1), bytes(65), bytes(64)
        )
    bad_point = CertificateRequest(
        CARD_ID, "X00000019", "", dt.date(2025, 1, 1), dt.date(2026, 1, 1), b"\x04" + bytes(64), bytes(64)
    )
    with pytest.raises(CertificateAuthorityError):
        ca.issue(bad_point)
    with pytest.raises(InvalidKeyError):
        TestCa.from_parts(Sm2PrivateKey.generate(), demo_ca().certificate)


class _TamperingCa:
    """A CA front that spoils the proof the first time (e.g. a relay fault)."""

    def __init__(self) -> None:
        self.inner = LocalTestCa()
        self.calls = 0

    @property
    def anchors(self) -> tuple[object, ...]:
        return self.inner.anchors

    def issue(self, request: CertificateRequest) -> IssuedCertificates:
        self.calls += 1
        if self.calls == 1:
            spoiled = bytes(64)
            request = CertificateRequest(
                request.card_id,
                request.card_number,
                request.issuer_name,
                request.not_before,
                request.not_after,
                request.public_key,
                spoiled,
            )
        return self.inner.issue(request)


def test_a_ca_failure_leaves_the_issuance_resumable(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(60)
    journal = MemoryJournal()
    ca = _TamperingCa()
    with pytest.raises(CertificateAuthorityError):
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR, ca=ca)  # type: ignore[arg-type]
    assert journal.last("card.issue").state == "open"
    result = issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR, ca=ca)  # type: ignore[arg-type]
    assert result.resumed and ca.calls == 2 and journal.last("card.issue").result == "ok"


def test_write_key_bodies_agree_across_key_sources() -> None:
    psam = psam_source()
    hsm = HsmKeySource(SoftwareHsm(demo_key_set()))
    with pytest.warns(DevKeysWarning):
        dev = DevKeyFileKeySource(demo_key_set())
    ktk = block_key(Algorithm.SM4, demo_key_set().card_key(Algorithm.SM4, KeyRole.KTK, FACTOR))
    iv = bytes(range(16))
    for p1, p2, block in ((0x00, KeyRole.AMK.kid, b""), (0x01, 0x01, b"\x21\x10\x08")):
        bodies = {
            source.write_key_body(Algorithm.SM4, FACTOR, iv, p1, p2, block) for source in (psam, hsm, dev)
        }
        assert len(bodies) == 1
        (body,) = bodies
        secret = unwrap_secret(ktk, body[:-4])
        expected = block or demo_key_set().card_key(Algorithm.SM4, KeyRole.AMK, FACTOR)
        assert secret == expected
    tdes = {s.write_key_body(Algorithm.TDES, FACTOR, iv[:8], 0x00, 0x04) for s in (psam, hsm, dev)}
    assert len(tdes) == 1 and len(next(iter(tdes))) == 28
    for source in (psam, hsm, dev):
        with pytest.raises(KeySourceError):
            source.write_key_body(Algorithm.SM4, FACTOR, iv, 0x00, KeyRole.KTK.kid)
        with pytest.raises(InvalidInput):
            source.write_key_body(Algorithm.SM4, FACTOR, iv, 0x02, 0x04)
        with pytest.raises(InvalidInput):
            source.write_key_body(Algorithm.SM4, FACTOR, iv[:8], 0x00, 0x04)


def test_hsm_write_key_step_text() -> None:
    request = HsmRequest(Algorithm.SM4, KeyRole.KTK, FACTOR, bytes(16), bytes((0x00, 0x04)))
    text = request.to_text()
    assert text.startswith("03|000A|1342A7D2CDFACC19|") and text.endswith("|0004|")
    assert HsmRequest.parse(text).operation == "write_key" and "0004" not in repr(request)
    answer = SoftwareHsm(demo_key_set()).process(text)
    assert len(parse_answer(answer, request)) == 36  # type: ignore[arg-type]
    assert SoftwareHsm(demo_key_set()).process("03|000A|1342A7D2CDFACC19|" + "00" * 16 + "|000A|") == "-24|"
    with pytest.raises(InvalidInput):
        parse_answer("00" * 20 + "|", request)


def test_issuance_through_security_module_steps(registry: Opened) -> None:
    reg, _ = registry
    hsm = SoftwareHsm(demo_key_set())
    stock = StockCard(61)
    session = stock.session(key_source=None)
    conversation = HsmConversation(
        lambda keys: issue_card(session, order_for(), registry=reg, actor=ACTOR, key_source=keys)
    )
    step = conversation.start()
    while not step.done:
        assert step.request is not None
        step = conversation.answer(hsm.process(step.request))
    assert step.result is not None and step.result.registry_status == "issued"
    assert conversation.steps > 20 and hsm.requests == conversation.steps - 1
    assert flows.read_basic(session).card_number == "X00000019"

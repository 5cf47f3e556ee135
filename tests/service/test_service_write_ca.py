"""National ``iWriteCA`` over real pcscd + vpcd: a blank card personalised up to
its key pair (the CA did not answer during issuance), then, as an issuing
counter does it through the drop-in: ``iReadSignatureKey``, certificates from
the CA (the demo CA, ``LocalTestCa``), ``iWriteCA``; afterwards the issuance
finishes the card, which passes authentication.  Plus the refusals."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from service_cards import COUNTER_ORIGIN, NATIONAL_WS, PullingCard, card_os, fields
from service_harness import Insert, Service

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_holder, demo_psam_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from sm_crypto.ca import TestCa
from sm_crypto.sm2 import Sm2PrivateKey
from sm_crypto.x509 import Sm2Certificate
from terminal import flows
from terminal.flows.issuance import issue_card
from terminal.issuance import IssuanceOrder, LocalTestCa
from terminal.issuance.ca import PROOF_PREFIX, CertificateRequest, IssuedCertificates, proof_message
from terminal.issuance.errors import CertificateAuthorityError
from terminal.journal_hook import MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.registry import Actor, Registry, open_registry
from terminal.session import CardSession


class Counter:
    """A counter page on the national drop-in: one WebSocket, call and answer."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def call(self, function: str, **args: Any) -> dict[str, Any]:
        self.ws.send_json({"function": function, **args})
        answer: dict[str, Any] = self.ws.receive_json()
        assert answer["function"] == function and isinstance(answer["success"], int), answer
        return answer

    def ok(self, function: str, **args: Any) -> str:
        answer = self.call(function, **args)
        assert answer["success"] == 0, answer
        out: str = answer["pOutInfo"]
        return out

    def code(self, function: str, **args: Any) -> int:
        code: int = self.call(function, **args)["success"]
        return code


@contextmanager
def counter(service: Service) -> Iterator[Counter]:
    with service.client.websocket_connect(NATIONAL_WS, headers={"Origin": COUNTER_ORIGIN}) as ws:
        yield Counter(ws)


ACTOR = Actor(operator="op-svc", terminal="T-SVC-01")
STOCK_NUMBER = 41


class UnreachableCa:
    """A CA that keeps the request and does not answer: issuance stops after the key pair."""

    def __init__(self) -> None:
        self.requests: list[CertificateRequest] = []

    @property
    def anchors(self) -> tuple[Sm2Certificate, ...]:
        return LocalTestCa().anchors

    def issue(self, request: CertificateRequest) -> IssuedCertificates:
        self.requests.append(request)
        raise CertificateAuthorityError("the CA is not reachable")


def _order() -> IssuanceOrder:
    person, data = demo_holder("gen3")
    facts = {k: v for k, v in data.to_mapping().items() if k != "serial"}
    return IssuanceOrder.from_mapping(person.to_mapping(), facts)


def _in_process(card: CardOS) -> CardSession:
    transport = InProcessTransport(reader="In-process card", protocol="T0")
    transport.insert(card)
    psam = PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="In-process PSAM"))
    return CardSession(
        transport, key_source=psam, journal=MemoryJournal(), trust_anchors=list(LocalTestCa().anchors)
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg, _journal = open_registry(f"sqlite:///{tmp_path_factory.mktemp('write-ca') / 'registry.db'}")
    yield reg
    reg.close()


def _half_issued(registry: Registry, number: int = STOCK_NUMBER) -> tuple[CardOS, CertificateRequest]:
    """A stock card personalised up to GENERATE KEY PAIR (no certificates yet)."""
    card = CardOS(demo_stock_card_image(number))
    ca = UnreachableCa()
    with pytest.raises(CertificateAuthorityError):
        issue_card(_in_process(card), _order(), registry=registry, actor=ACTOR, ca=ca)
    (request,) = ca.requests
    return card, request


def _write_data(issued: IssuedCertificates) -> str:
    return (
        f"{issued.signature_certificate.der.hex().upper()}|"
        f"{issued.encryption_certificate.der.hex().upper()}|"
        f"{issued.encryption_key_envelope.hex().upper()}|"
    )


def _foreign_key_request(request: CertificateRequest) -> CertificateRequest:
    """The same card's request with another signature key (and its own valid proof)."""
    key = Sm2PrivateKey.generate()
    public = key.public_key().to_bytes()
    proof = key.sign(PROOF_PREFIX + proof_message(request.card_id, request.card_number, public))
    return replace(request, public_key=public, proof=proof)


def test_write_ca_on_a_card_in_personalisation(svc: Service, insert: Insert, registry: Registry) -> None:
    card, request = _half_issued(registry)
    card_info = f"{request.card_id}|{request.card_number}|"
    issued = LocalTestCa().issue(request)
    with counter(svc) as page, insert(card):
        # The counter reads the card's signature public key and gets the certificates from the CA.
        (key_hex,) = fields(page.ok("iReadSignatureKey", iType=1))
        assert bytes.fromhex(key_hex) == request.public_key
        # Refusals before any write.
        other_key = LocalTestCa().issue(_foreign_key_request(request))
        assert page.code("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=_write_data(other_key)) == -22
        start = _dt.datetime(2020, 1, 1, tzinfo=_dt.UTC)
        foreign_ca = LocalTestCa(TestCa(not_before=start, not_after=start.replace(year=2070)))
        foreign = _write_data(foreign_ca.issue(request))
        assert page.code("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=foreign) == -23
        mixed = replace(issued, encryption_key_envelope=other_key.encryption_key_envelope)
        assert page.code("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=_write_data(mixed)) == -23
        not_a_certificate = "3082000130|" + _write_data(issued).split("|", 1)[1]
        assert page.code("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=not_a_certificate) == -23
        for malformed in ("", "ABCD|", "XYZ|AB|CD|", _write_data(issued)[:-1]):
            assert page.code("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=malformed) == -14
        wrong_card = f"{request.card_id}|X99999999|"
        assert page.code("iWriteCA", iType=1, pCardInfo=wrong_card, pWriteData=_write_data(issued)) == -22
        # Nothing was written by the refused calls.
        assert not svc.journal.incomplete(request.card_id)
        answer = page.call("iWriteCA", iType=1, pCardInfo=card_info, pWriteData=_write_data(issued))
        assert answer["success"] == 0 and answer["pOutInfo"] == "", answer
        # Written again (the same data): allowed while the card is in personalisation.
        assert page.ok("iWriteCA", iType=1, pCardInfo="", pWriteData=_write_data(issued)) == ""
    steps = [e for e in svc.journal.entries if e.operation == "card.issue.step"]
    names = [e.details["step"] for e in steps[:3]]
    assert names == ["write_certificate", "write_certificate", "import_encryption_key"]
    assert all(e.result == "ok" for e in steps)
    # The issuance finishes the card (certificates found valid: no new CA request) ...
    session = _in_process(card)
    result = issue_card(session, _order(), registry=registry, actor=ACTOR, ca=UnreachableCa())
    # Only END OF PERSONALISATION was left: the certificates and the key pair were found valid.
    assert result.life_cycle is LifeCycle.PERSONALISED and result.steps_run == 1
    assert result.certificate_serial == f"{issued.signature_certificate.serial_number:X}"
    # ... which passes authentication (IAK and the SM2 certificate chain).
    assert flows.authenticate_card(session).to_dict()["genuine"] is True
    session.close()


def test_write_ca_torn_and_written_again(svc: Service, insert: Insert, registry: Registry) -> None:
    """The card pulled during a certificate chunk: -2, the step entry and the
    call's entry torn; the next iWriteCA settles both from the card (partial
    DER: not applied) and writes all."""
    card, request = _half_issued(registry, STOCK_NUMBER + 2)
    issued = LocalTestCa().issue(request)
    pulling = PullingCard(card)
    with counter(svc) as page:
        with insert(pulling) as link:
            pulling.arm(0xD6)  # UPDATE BINARY: the first certificate chunk
            assert page.code("iWriteCA", iType=1, pCardInfo="", pWriteData=_write_data(issued)) == -2
            assert pulling.pulled and not link.inserted
        torn = [e for e in svc.journal.entries if e.card_id == request.card_id and e.state == "torn"]
        assert sorted(e.operation for e in torn) == ["card.issue.step", "card.write_certificates"]
        assert [e.details["step"] for e in torn if e.operation == "card.issue.step"] == ["write_certificate"]
        with insert(card):
            assert page.ok("iWriteCA", iType=1, pCardInfo="", pWriteData=_write_data(issued)) == ""
    assert all(e.state == "resolved" and e.resolution == "card_state_not_applied" for e in torn)
    assert not svc.journal.incomplete(request.card_id)
    result = issue_card(_in_process(card), _order(), registry=registry, actor=ACTOR, ca=UnreachableCa())
    assert result.life_cycle is LifeCycle.PERSONALISED and result.steps_run == 1


def test_write_ca_refused_outside_personalisation(svc: Service, insert: Insert, registry: Registry) -> None:
    with counter(svc) as page:
        with insert(card_os(3)):  # personalised (01): certificates are written only in 00
            answer = page.call("iWriteCA", iType=3, pCardInfo="", pWriteData="AB|CD|EF|")
            assert answer["success"] == -27013 and answer["function"] == "iWriteCA"
        with insert(card_os(2)):  # generation 2 has no SM2 key pair: refused like iReadSignatureKey
            assert page.code("iWriteCA", iType=3, pCardInfo="", pWriteData="AB|CD|EF|") == -27013
        assert page.code("iWriteCA", iType=3, pCardInfo="", pWriteData="AB|CD|EF|") == -2  # no card


def test_write_ca_on_a_stock_card(svc: Service, insert: Insert) -> None:
    """A stock card as delivered (no card facts in EF05 yet) is no social security
    card for an ordinary session yet: -1, as for every other national function."""
    card = CardOS(demo_stock_card_image(STOCK_NUMBER + 1))
    with counter(svc) as page, insert(card):
        assert page.code("iReadSignatureKey", iType=1) == -1
        assert page.code("iWriteCA", iType=1, pCardInfo="", pWriteData="AB|CD|EF|") == -1

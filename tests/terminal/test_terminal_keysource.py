"""Key sources: PSAM mapping, the HSM step protocol, the software module,
step-by-step conversations and the development key file."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from terminal_cards import ForeignCard, card_os, inprocess_session, psam_source

from apdu.errors import InvalidInput, KeySourceError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_key_set, demo_psam_image
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from card_model.psam_image import PsamImage
from emulator.psam import PsamCard
from terminal import flows
from terminal.keysource import (
    DevKeyFileKeySource,
    DevKeysWarning,
    HsmConversation,
    HsmKeySource,
    HsmRequest,
    PsamKeySource,
    SoftwareHsm,
    key_address,
    parse_answer,
)
from terminal.keysource.base import CardKeys

FACTOR = bytes.fromhex("E0CF52641D730D02")


def test_psam_terminal_number_and_cryptograms_match_the_key_set() -> None:
    psam = psam_source()
    assert psam.terminal_number == "110102000001"
    with pytest.warns(DevKeysWarning):
        local = DevKeyFileKeySource(demo_key_set())
    challenge = bytes(range(8))
    for alg in Algorithm:
        assert psam.external_auth(KeyRole.RK, alg, FACTOR, challenge) == local.external_auth(
            KeyRole.RK, alg, FACTOR, challenge
        )
        iv = bytes(alg.block_size)
        assert psam.mac(KeyRole.AMK, alg, FACTOR, iv, b"message") == local.mac(
            KeyRole.AMK, alg, FACTOR, iv, b"message"
        )
    assert "key" not in repr(psam).lower() or "terminal" in repr(psam)


def test_psam_usage_lacking_is_key_level() -> None:
    image = PsamImage.from_key_set(demo_key_set(), "110102000001", usage={KeyRole.RK: ["mac"]})
    psam = psam_source(image)
    with pytest.raises(KeySourceError) as info:
        psam.external_auth(KeyRole.RK, Algorithm.SM4, FACTOR, bytes(8))
    assert info.value.national_code == -24 and info.value.sw == 0x6985


def test_psam_without_reading_key_and_without_3des() -> None:
    masters = {
        k: v for k, v in demo_key_set().masters.items() if k[1] is not KeyRole.RK and k[0] is Algorithm.SM4
    }
    psam = psam_source(PsamImage.from_key_set(IssuerKeySet(masters), "110102000001"))
    with pytest.raises(KeySourceError) as rk:
        psam.external_auth(KeyRole.RK, Algorithm.SM4, FACTOR, bytes(8))
    assert rk.value.national_code == -2203
    with pytest.raises(KeySourceError) as tdes:
        psam.mac(KeyRole.AMK, Algorithm.TDES, FACTOR, bytes(8), b"x")
    assert tdes.value.national_code == -2202
    session, _, _ = inprocess_session(card_os(3), key_source=psam)
    assert flows.read_card_bas(session).split("|")[1] == ""


def test_no_psam_cases() -> None:
    with pytest.raises(KeySourceError) as empty:
        PsamKeySource(InProcessTransport(None, reader="empty slot"))
    assert empty.value.national_code == -2201
    with pytest.raises(KeySourceError) as foreign:
        PsamKeySource(InProcessTransport(ForeignCard(), reader="other card"))
    assert foreign.value.national_code == -2201
    transport = InProcessTransport(PsamCard(demo_psam_image()), reader="PSAM")
    psam = PsamKeySource(transport)
    transport.remove()
    with pytest.raises(KeySourceError) as pulled:
        psam.external_auth(KeyRole.RK, Algorithm.SM4, FACTOR, bytes(8))
    assert pulled.value.national_code == -2201


def test_psam_verifies_internal_authentication() -> None:
    psam = psam_source()
    keys = CardKeys(psam, Algorithm.SM4, FACTOR)
    card_key = demo_key_set().card_key(Algorithm.SM4, KeyRole.IAK, FACTOR)
    from sm_crypto.block import Sm4Key

    r = bytes(range(16))
    assert keys.verify_internal_auth(r, Sm4Key(card_key).encrypt_ecb(r))
    assert not keys.verify_internal_auth(r, bytes(16))
    assert not keys.verify_internal_auth(r[:8], bytes(8))


def test_hsm_request_text_and_parse() -> None:
    request = HsmRequest(Algorithm.SM4, KeyRole.RK, FACTOR, bytes.fromhex("0102030405060708"))
    assert request.to_text() == "03|0003|E0CF52641D730D02|0102030405060708|"
    assert HsmRequest.parse(request.to_text()) == request
    mac = HsmRequest(Algorithm.TDES, KeyRole.PRK, FACTOR, bytes(8), b"\x84\x5e")
    assert mac.to_text() == "01|0025|E0CF52641D730D02|0000000000000000|845E|"
    assert mac.operation == "mac"
    assert key_address(Algorithm.SM4, KeyRole.IAK) == "0001"
    assert "E0CF" not in repr(request)


@pytest.mark.parametrize(
    ("text", "error", "code"),
    [
        ("03|0003|E0CF52641D730D02|0102030405060708", InvalidInput, -14),
        ("03|0003|E0CF52641D730D02|", InvalidInput, -14),
        ("07|0003|E0CF52641D730D02|0102030405060708|", KeySourceError, -2202),
        ("03|0099|E0CF52641D730D02|0102030405060708|", KeySourceError, -24),
        ("03|0003|E0CF52641D73|0102030405060708|", InvalidInput, -42),
        ("03|0003|XXCF52641D730D02|0102030405060708|", InvalidInput, -41),
        ("03|0003|E0CF52641D730D02|01020304050607080910111213141516FF|", InvalidInput, -42),
        ("03|0003|E0CF52641D730D02|0102030405060708|00|", InvalidInput, -14),
    ],
)
def test_hsm_request_errors(text: str, error: type[Exception], code: int) -> None:
    with pytest.raises(error) as info:
        HsmRequest.parse(text)
    assert info.value.national_code == code  # type: ignore[attr-defined]
    assert SoftwareHsm(demo_key_set()).process(text) == f"{code}|"


def test_software_hsm_answers_and_refuses_misuse() -> None:
    hsm = SoftwareHsm(demo_key_set())
    ext = HsmRequest(Algorithm.SM4, KeyRole.RK, FACTOR, bytes(8))
    answer = hsm.process(ext.to_text())
    assert len(answer) == 33 and answer.endswith("|")
    assert parse_answer(answer, ext) == demo_key_set().master(Algorithm.SM4, KeyRole.RK).__class__(
        demo_key_set().card_key(Algorithm.SM4, KeyRole.RK, FACTOR)
    ).encrypt_ecb(bytes(16))
    misuse = "03|0004|E0CF52641D730D02|0000000000000000|"
    assert hsm.process(misuse) == "-14|"
    no_rk = SoftwareHsm(
        IssuerKeySet({k: v for k, v in demo_key_set().masters.items() if k[1] is not KeyRole.RK})
    )
    assert no_rk.process(ext.to_text()) == "-2203|"


def test_parse_answer_errors() -> None:
    ext = HsmRequest(Algorithm.SM4, KeyRole.RK, FACTOR, bytes(8))
    with pytest.raises(KeySourceError) as coded:
        parse_answer("-2203|", ext)
    assert coded.value.national_code == -2203
    with pytest.raises(KeySourceError) as other:
        parse_answer("-99|", ext)
    assert other.value.national_code == -24
    for bad in ("", "12|34|", "ABCD|", "-x|", "ZZ" * 16 + "|"):
        with pytest.raises(InvalidInput):
            parse_answer(bad, ext)
    check = HsmRequest(Algorithm.SM4, KeyRole.IAK, FACTOR, bytes(16), bytes(16))
    assert parse_answer("0|", check) is True and parse_answer("-21|", check) is False
    with pytest.raises(InvalidInput):
        parse_answer("00|", check)


def test_conversation_read_card_bas_in_two_steps() -> None:
    session, _, _ = inprocess_session(card_os(3))
    hsm = SoftwareHsm(demo_key_set())
    conversation = HsmConversation(lambda keys: flows.read_card_bas(session, key_source=keys))
    step = conversation.start()
    assert step.number == 1 and not step.done and step.request is not None
    assert step.request.startswith(f"03|0003|{session.info.factor.hex().upper()}|")
    assert step.request not in repr(step)
    step = conversation.answer(hsm.process(step.request))
    assert step.done and step.number == 2
    assert isinstance(step.result, str) and step.result.split("|")[1] == "110102197305211008"
    with pytest.raises(KeySourceError) as info:
        conversation.answer("00|")
    assert info.value.national_code == -2204


def test_conversation_reset_pin_in_three_steps() -> None:
    session, _, _ = inprocess_session(card_os(3))
    hsm = SoftwareHsm(demo_key_set())
    conversation = HsmConversation(lambda keys: flows.reset_pin(session, key_source=keys))
    step = conversation.start()
    requests = []
    while not step.done:
        assert step.request is not None
        requests.append(step.request)
        step = conversation.answer(hsm.process(step.request))
    assert [r.split("|")[1] for r in requests] == ["0003", "0005"]
    assert step.number == 3 and step.result is not None and step.result.status.state == "initial"


def test_conversation_without_key_need_is_done_at_once() -> None:
    session, _, _ = inprocess_session(card_os(1))
    step = HsmConversation(lambda keys: flows.read_holder(session, key_source=keys)).start()
    assert step.done and step.number == 1 and step.result is not None


def test_conversation_errors_and_cancel() -> None:
    session, _, _ = inprocess_session(card_os(3))
    conversation = HsmConversation(lambda keys: flows.read_holder(session, key_source=keys))
    conversation.start()
    with pytest.raises(KeySourceError) as refused:
        conversation.answer("-24|")
    assert refused.value.national_code == -24
    assert session.journal.last("card.read_holder").result == "failed"  # type: ignore[attr-defined]
    cancelled = HsmConversation(lambda keys: flows.unblock_pin(session, key_source=keys))
    cancelled.start()
    cancelled.cancel()
    assert cancelled.done
    assert session.journal.last("pin.unblock").result == "failed"  # type: ignore[attr-defined]
    malformed = HsmConversation(lambda keys: flows.read_holder(session, key_source=keys))
    malformed.start()
    with pytest.raises(InvalidInput) as bad:
        malformed.answer("not hex|")
    assert bad.value.national_code == -41
    timed = HsmConversation(lambda keys: flows.read_holder(session, key_source=keys), timeout=0.05)
    timed.start()
    time.sleep(0.2)
    with pytest.raises(KeySourceError, match="in time"):
        timed.answer("00|")


def test_hsm_key_source_refuses_role_misuse() -> None:
    source = HsmKeySource(SoftwareHsm(demo_key_set()))
    with pytest.raises(KeySourceError) as info:
        source.external_auth(KeyRole.AMK, Algorithm.SM4, FACTOR, bytes(8))
    assert info.value.national_code == -24


def test_dev_key_file_round_trip_and_loud_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.toml"
    demo_key_set().save(path)
    with (
        caplog.at_level(logging.ERROR, logger="sscard.keysource"),
        pytest.warns(DevKeysWarning, match="NOT FOR PRODUCTION"),
    ):
        source = DevKeyFileKeySource.load(path, terminal_number="110102000009")
    assert any("严禁用于生产环境" in r.getMessage() for r in caplog.records)
    assert "NOT FOR PRODUCTION" in repr(source)
    session, _, _ = inprocess_session(card_os(3), key_source=source)
    assert flows.read_card_bas(session).split("|")[9] == "110102000009"
    with pytest.raises(KeySourceError) as misuse:
        source.mac(KeyRole.RK, Algorithm.SM4, FACTOR, bytes(16), b"x")
    assert misuse.value.national_code == -24


def test_dev_key_file_unreadable(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("format = 'nope'\n", encoding="utf-8")
    with pytest.raises(Exception) as info:
        DevKeyFileKeySource.load(tmp_path / "bad.toml")
    assert getattr(info.value, "national_code", None) == -1011


def test_bad_factor_and_challenge_lengths() -> None:
    psam = psam_source()
    with pytest.raises(InvalidInput) as factor:
        psam.external_auth(KeyRole.RK, Algorithm.SM4, b"\x01", bytes(8))
    assert factor.value.national_code == -42
    with pytest.raises(InvalidInput):
        psam.external_auth(KeyRole.RK, Algorithm.TDES, FACTOR, bytes(16))
    with pytest.raises(InvalidInput):
        psam.mac(KeyRole.AMK, Algorithm.SM4, FACTOR, bytes(8), b"x")

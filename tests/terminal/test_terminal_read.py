"""Reading flows and card authenticity in process, over the real card OS and PSAM."""

from __future__ import annotations

import datetime as dt

import pytest
from terminal_cards import card_os, inprocess_session, psam_source

from apdu.errors import ApplicationBlocked, CardNotGenuine, InvalidInput, KeySourceError
from card_model.demo import demo_card_image, demo_key_set
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from card_model.lifecycle import LifeCycle
from sm_crypto.ca import TestCa
from terminal import flows
from terminal.journal_hook import MemoryJournal
from terminal.keysource import DevKeyFileKeySource, HsmKeySource, SoftwareHsm

GEN3_SSN = "110102197305211008"


def test_read_basic_gen3_json_fields() -> None:
    session, _, _ = inprocess_session(card_os(3))
    basic = flows.read_basic(session)
    assert basic.to_dict() == {
        "generation": 3,
        "spec_version": "3.00",
        "card_type": "1",
        "card_id": session.card_id,
        "region_code": "110102",
        "init_org": "110000000000000000000003",
        "issue_date": "2025-03-01",
        "expiry_date": "2035-02-28",
        "card_number": "X00000019",
        "atr": "3B6A0000424A5353433300039000",
    }
    assert basic.historical_bytes == "424A5353433300039000"
    assert basic.interface == "contact"


def test_read_basic_answers_what_the_card_holds_now() -> None:
    # read basic reuses the detection's decoding only for the very same bytes:
    # an EF05 changed on the card since detection is decoded afresh.
    from apdu.elements import element

    card = card_os(3)
    session, _, _ = inprocess_session(card)
    tag = element("card_number").tag
    card.image.record_files[0xEF05].records[tag] = b"X00000027"
    assert flows.read_basic(session).card_number == "X00000027"
    assert session.info.card_number == "X00000019"  # detection saw the earlier value


@pytest.mark.parametrize(
    ("generation", "version", "number"), [(2, "2.00", "B00000027"), (1, "1.00", "A00000035")]
)
def test_read_basic_older_generations(generation: int, version: str, number: str) -> None:
    session, _, _ = inprocess_session(card_os(generation))
    basic = flows.read_basic(session)
    assert (basic.generation, basic.spec_version, basic.card_number) == (generation, version, number)


def test_read_basic_contactless_interface() -> None:
    session, _, _ = inprocess_session(card_os(3, interface="contactless"), protocol="T1")
    basic = flows.read_basic(session)
    assert basic.interface == "contactless"
    assert basic.atr.startswith("3B8A8001")


def test_read_holder_gen3_with_psam() -> None:
    journal = MemoryJournal()
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source(), journal=journal)
    holder = flows.read_holder(session)
    assert holder.to_dict() == {
        "ssn": GEN3_SSN,
        "name": "张三",
        "name_extension": "",
        "gender": "1",
        "gender_text": "男",
        "ethnicity": "01",
        "ethnicity_text": "汉族",
        "birthplace": "110102",
        "birth_date": "1973-05-21",
    }
    assert GEN3_SSN not in repr(holder) and "张三" not in repr(holder)
    entry = journal.last("card.read_holder")
    assert entry.result == "ok" and entry.outcome_details == {"external_auth": "true"}


def test_read_holder_long_name_joins_extension() -> None:
    session, _, _ = inprocess_session(card_os(3, holder="x_long_name"), key_source=psam_source())
    holder = flows.read_holder(session)
    assert holder.name_extension
    assert holder.name.endswith(holder.name_extension) and len(holder.name) > len(holder.name_extension)
    assert holder.ssn.endswith("X")


def test_read_holder_gen2_uses_3des_reading_key() -> None:
    session, _, _ = inprocess_session(card_os(2), key_source=psam_source())
    assert session.algorithm is Algorithm.TDES
    assert flows.read_holder(session).ssn == "110105196209152006"


def test_read_holder_gen1_needs_no_key() -> None:
    session, _, _ = inprocess_session(card_os(1))
    holder = flows.read_holder(session)
    assert holder.ssn == "110106199002283017"
    assert session.journal.last("card.read_holder").outcome_details == {"external_auth": "false"}  # type: ignore[attr-defined]


def test_read_holder_without_key_source_is_no_psam() -> None:
    session, _, _ = inprocess_session(card_os(3))
    with pytest.raises(KeySourceError) as info:
        flows.read_holder(session)
    assert info.value.national_code == -2201


def test_read_holder_refused_by_blocked_application() -> None:
    session, _, _ = inprocess_session(
        card_os(3, life_cycle=LifeCycle.TEMPORARILY_BLOCKED), key_source=psam_source()
    )
    assert session.info.application_blocked
    assert flows.read_basic(session).application_blocked
    with pytest.raises(ApplicationBlocked) as info:
        flows.read_holder(session)
    assert info.value.sw == 0x6A81 and info.value.national_code == -27265
    assert session.journal.last("card.read_holder").result == "failed"  # type: ignore[attr-defined]


def test_read_card_bas_national_string() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    session.device_number = "DEV-01"
    text = flows.read_card_bas(session)
    fields = text.split("|")
    assert text.endswith("|") and len(fields) == 12
    assert fields[:11] == [
        "110102",
        GEN3_SSN,
        "X00000019",
        session.card_id,
        "张三",
        "424A5353433300039000",
        "3.00",
        "20250301",
        "20350228",
        "110102000001",
        "DEV-01",
    ]


def test_read_card_bas_without_reading_key_leaves_ssn_and_name_empty() -> None:
    session, _, _ = inprocess_session(card_os(3))
    fields = flows.read_card_bas(session).split("|")
    assert fields[1] == "" and fields[4] == ""
    no_rk = IssuerKeySet({k: v for k, v in demo_key_set().masters.items() if k[1] is not KeyRole.RK})
    with pytest.warns(UserWarning):
        source = DevKeyFileKeySource(no_rk)
    fields = flows.read_card_bas(session, key_source=source).split("|")
    assert fields[1] == "" and fields[4] == ""


def test_read_card_bas_gen1_has_ssn_without_key() -> None:
    session, _, _ = inprocess_session(card_os(1))
    assert flows.read_card_bas(session).split("|")[1] == "110106199002283017"


def test_read_holder_through_software_hsm() -> None:
    hsm = SoftwareHsm(demo_key_set())
    session, _, _ = inprocess_session(card_os(3), key_source=HsmKeySource(hsm))
    assert flows.read_holder(session).ssn == GEN3_SSN
    assert hsm.requests == 1


def test_authenticate_gen3_psam() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    result = flows.authenticate_card(session)
    assert result.to_dict()["genuine"] is True
    assert result.sm2 is True and result.symmetric is True
    assert result.anchor_subject is not None and "demo root CA" in result.anchor_subject
    assert session.card_id in (result.certificate_subject or "")


def test_authenticate_gen2_symmetric_only() -> None:
    session, _, _ = inprocess_session(card_os(2), key_source=psam_source())
    result = flows.authenticate_card(session)
    assert result.sm2 is None and result.symmetric


def test_authenticate_with_wrong_keys_is_not_genuine() -> None:
    wrong = IssuerKeySet({(a, r): bytes(16) for (a, r) in demo_key_set().masters})
    with pytest.warns(UserWarning):
        source = DevKeyFileKeySource(wrong)
    session, _, _ = inprocess_session(card_os(3), key_source=source)
    with pytest.raises(CardNotGenuine) as info:
        flows.authenticate_card(session)
    assert info.value.national_code == -21
    assert session.journal.last("card.authenticate").national_code == -21  # type: ignore[attr-defined]


def test_authenticate_reports_the_symmetric_verdict_when_both_halves_fail() -> None:
    # The key source checks the SM4 answer while the SM2 half runs: with wrong
    # keys and a foreign anchor, the SM4 failure is the one reported (as when
    # the halves ran one after the other).
    wrong = IssuerKeySet({(a, r): bytes(16) for (a, r) in demo_key_set().masters})
    with pytest.warns(UserWarning):
        source = DevKeyFileKeySource(wrong)
    session, _, _ = inprocess_session(card_os(3), key_source=source)
    other = TestCa({"CN": "another root", "C": "CN"})
    with pytest.raises(CardNotGenuine, match="does not match its key"):
        flows.authenticate_card(session, trust_anchors=[other.certificate])


def test_authenticate_key_source_error_is_kept_when_the_sm2_half_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = psam_source()
    session, _, _ = inprocess_session(card_os(3), key_source=source)

    def gone(*args: object) -> bool:
        raise KeySourceError("PSAM gone", kind="no_psam")

    monkeypatch.setattr(source, "verify_internal_auth", gone)
    other = TestCa({"CN": "another root", "C": "CN"})
    with pytest.raises(KeySourceError) as info:
        flows.authenticate_card(session, trust_anchors=[other.certificate])
    assert info.value.national_code == -2201


def test_authenticate_card_refusal_comes_before_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # The chain is verified while the card is asked to sign: when the card
    # refuses and the chain fails too, the card's refusal is the error.
    session, transport, _ = inprocess_session(card_os(3), key_source=psam_source())
    real = transport.transmit

    def refuse_sm2(apdu: bytes) -> bytes:
        return b"\x69\x85" if apdu[:4] == bytes.fromhex("00888000") else real(apdu)

    monkeypatch.setattr(transport, "transmit", refuse_sm2)
    other = TestCa({"CN": "another root", "C": "CN"})
    with pytest.raises(CardNotGenuine, match="internal authentication refused") as info:
        flows.authenticate_card(session, trust_anchors=[other.certificate])
    assert info.value.sw == 0x6985


def test_authenticate_against_foreign_anchor_is_not_genuine() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    other = TestCa({"CN": "another root", "C": "CN"})
    with pytest.raises(CardNotGenuine, match="chain"):
        flows.authenticate_card(session, trust_anchors=[other.certificate])


def test_authenticate_expired_certificate_is_not_genuine() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    later = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(CardNotGenuine, match="expired"):
        flows.authenticate_card(session, at=later)


def test_authenticate_certificate_of_another_card_is_not_genuine() -> None:
    image = demo_card_image(3)
    other = demo_card_image(3, holder="x_long_name")
    image.binary_files[0xEF0D] = other.binary_files[0xEF0D]
    session, _, _ = inprocess_session(card_os(image=image), key_source=psam_source())
    with pytest.raises(CardNotGenuine, match="another card"):
        flows.authenticate_card(session)


def _card_apdus(transport: object, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records every command the card of an in-process session receives."""
    sent: list[bytes] = []
    real = transport.transmit  # type: ignore[attr-defined]

    def transmit(apdu: bytes) -> bytes:
        sent.append(bytes(apdu))
        return real(apdu)  # type: ignore[no-any-return]

    monkeypatch.setattr(transport, "transmit", transmit)
    return sent


def test_authenticate_gen3_sends_no_redundant_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two INTERNAL AUTHENTICATE and the EF0D certificate in 256-byte reads,
    the first by SFI: no SELECT, no GET CHALLENGE, no header-only read."""
    session, transport, _ = inprocess_session(card_os(3), key_source=psam_source())
    der_length = 4 + int.from_bytes(bytes(demo_card_image(3).binary_files[0xEF0D].content[2:4]), "big")
    sent = _card_apdus(transport, monkeypatch)
    flows.authenticate_card(session)
    headers = [apdu[:4] for apdu in sent]
    # SM4, the certificate (its chain is verified while the card signs), SM2
    assert headers[0] == bytes.fromhex("00880001") and headers[-1] == bytes.fromhex("00888000")
    reads = -(-der_length // 256)
    assert headers[1:-1] == [bytes.fromhex("00B08D00")] + [
        bytes([0x00, 0xB0, offset >> 8, offset & 0xFF]) for offset in range(256, der_length, 256)
    ]
    assert len(sent) == 2 + reads  # 5 with the demo certificate (3 reads)
    assert sent[-2][-1] == (der_length % 256 or 256) % 256  # the last read asks the exact rest


def test_authenticate_encryption_certificate_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """EF0E is not read by default (a broken one goes unnoticed here); with
    ``check_encryption_certificate`` it is read and must verify."""
    from terminal.flows import authenticity

    image = demo_card_image(3)
    image.binary_files[0xEF0E].content[:] = bytes(len(image.binary_files[0xEF0E].content))
    session, _, _ = inprocess_session(card_os(image=image), key_source=psam_source())
    assert flows.authenticate_card(session).sm2 is True
    settings = {**authenticity._settings(), "check_encryption_certificate": True}
    monkeypatch.setattr(authenticity, "_settings", lambda: settings)
    with pytest.raises(CardNotGenuine, match="EF0E holds no DER certificate"):
        flows.authenticate_card(session)
    good, transport, _ = inprocess_session(card_os(3), key_source=psam_source())
    sent = _card_apdus(transport, monkeypatch)
    assert flows.authenticate_card(good).sm2 is True
    assert bytes.fromhex("00B08E00") in [apdu[:4] for apdu in sent]


def test_authenticate_certificate_file_without_sfi_is_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile without an SFI for the certificate file: one SELECT, then offset reads."""
    import dataclasses

    from terminal.flows import authenticity
    from terminal.flows._common import file_spec

    def no_sfi(session: object, name: str) -> object:
        return dataclasses.replace(file_spec(session, name), sfi=None)  # type: ignore[arg-type]

    monkeypatch.setattr(authenticity, "file_spec", no_sfi)
    session, transport, _ = inprocess_session(card_os(3), key_source=psam_source())
    sent = _card_apdus(transport, monkeypatch)
    assert flows.authenticate_card(session).sm2 is True
    headers = [apdu[:4] for apdu in sent]
    assert headers.count(bytes.fromhex("00A4020C")) == 1 and bytes.fromhex("00B00000") in headers


def test_authenticate_certificate_longer_than_its_file_is_not_genuine() -> None:
    image = demo_card_image(3)
    image.binary_files[0xEF0D].content[2:4] = (0xFFF0).to_bytes(2, "big")
    session, _, _ = inprocess_session(card_os(image=image), key_source=psam_source())
    with pytest.raises(CardNotGenuine, match="exceeds the file"):
        flows.authenticate_card(session)


def test_authenticate_without_anchor_is_bad_parameter() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    with pytest.raises(InvalidInput) as info:
        flows.authenticate_card(session, trust_anchors=[])
    assert info.value.national_code == -14

"""Generic read / write by national file address, in process."""

from __future__ import annotations

import pytest
from terminal_cards import card_os, inprocess_session, psam_source

from apdu.errors import InvalidInput
from card_model.demo import demo_card_image
from terminal import flows
from terminal.errors import CardDataMismatch


@pytest.fixture
def session():  # type: ignore[no-untyped-def]
    s, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    return s


def test_parse_file_address() -> None:
    address = flows.parse_file_address("3F00EF06|08|09|4E|0A|0B|0C|0D|$")
    assert address.fid == 0xEF06 and address.tags == (0x08, 0x09, 0x4E, 0x0A, 0x0B, 0x0C, 0x0D)
    assert address.text() == "3F00EF06|08|09|4E|0A|0B|0C|0D|$"
    assert flows.parse_file_address(" 3f00ef05|07|$ ").tags == (0x07,)


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("3F00EF06|08|09|", -14),
        ("3F00EF06|08|09$", -14),
        ("3F00EF06|$", -14),
        ("EF06|08|$", -14),
        ("3F00EF06EF07|08|$", -14),
        ("3F00EF0G|08|$", -41),
        ("3F00EF06|0X|$", -41),
        ("3F00EF6|08|$", -42),
        ("3F00EF06|008|$", -42),
        ("3F00EF06|08|08|$", -14),
        ("3F00EF06|00|$", -14),
    ],
)
def test_bad_addresses(address: str, code: int) -> None:
    with pytest.raises(InvalidInput) as info:
        flows.parse_file_address(address)
    assert info.value.national_code == code


def test_read_ef06_national_text(session) -> None:  # type: ignore[no-untyped-def]
    result = flows.read_generic(session, "3F00EF06|08|09|4E|0A|0B|0C|0D|$")
    assert result.national() == "110102197305211008|张三||1|01|110102|19730521|"
    assert result.to_dict()["records"][0] == {"tag": "08", "value": "110102197305211008"}
    assert "110102197305211008" not in repr(result)


def test_read_ef05_without_key(session) -> None:  # type: ignore[no-untyped-def]
    bare, _, _ = inprocess_session(card_os(3))
    result = flows.read_generic(bare, "3F00EF05|07|03|01|$")
    assert result.national() == f"X00000019|3.00|{bare.card_id}|"


def test_card_info_must_match(session) -> None:  # type: ignore[no-untyped-def]
    good = f"{session.card_id}|X00000019|"
    assert flows.read_generic(session, "3F00EF05|07|$", card_info=good).national() == "X00000019|"
    with pytest.raises(CardDataMismatch) as info:
        flows.read_generic(session, "3F00EF05|07|$", card_info=f"{session.card_id}|X00000020|")
    assert info.value.national_code == -22
    with pytest.raises(InvalidInput) as bad:
        flows.read_generic(session, "3F00EF05|07|$", card_info="nothex|X00000019|")
    assert bad.value.national_code == -20
    with pytest.raises(InvalidInput) as rid:
        flows.read_generic(session, "3F00EF05|07|$", card_info=f"{'11' * 16}|X00000019|")
    assert rid.value.national_code == -20
    with pytest.raises(InvalidInput):
        flows.read_generic(session, "3F00EF05|07|$", card_info="only one field")


def test_unknown_file_and_tag_are_bad_parameters(session) -> None:  # type: ignore[no-untyped-def]
    for address in ("3F00EF09|01|$", "3F00EF0D|01|$", "3F00EF05|20|$"):
        with pytest.raises(InvalidInput) as info:
            flows.read_generic(session, address)
        assert info.value.national_code == -14


def test_write_ef07_under_secure_messaging(session) -> None:  # type: ignore[no-untyped-def]
    result = flows.write_generic(session, "3F00EF07|21|22|23|$", "13912345678|教师|100000|")
    assert result.to_dict() == {"file": "EF07", "tags": ["21", "22", "23"]}
    read = flows.read_generic(session, "3F00EF07|21|22|23|$")
    assert read.national() == "13912345678|教师|100000|"
    entry = session.journal.last("card.write")
    assert entry.result == "ok" and set(entry.details) >= {"file", "tags", "check_21", "check_22", "check_23"}
    assert "13912345678" not in str(entry.details)


def test_write_errors(session) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ("3F00EF06|09|$", "李四|", -14),
        ("3F00EF05|07|$", "X1|", -14),
        ("3F00EF07|21|23|$", "139|", -14),
        ("3F00EF07|21|$", "139", -14),
        ("3F00EF07|23|$", "10000A|", -41),
        ("3F00EF07|23|$", "1000000|", -42),
        ("3F00EF07|21|$", "1" * 21 + "|", -42),
    ]
    for address, data, code in cases:
        with pytest.raises(InvalidInput) as info:
            flows.write_generic(session, address, data)
        assert info.value.national_code == code, (address, data)
    other = demo_card_image(3, holder="x_long_name").card_id.hex()
    with pytest.raises(CardDataMismatch):
        flows.write_generic(session, "3F00EF07|21|$", "139|", card_info=f"{other}|X00000019|")
    assert session.journal.last("card.write").result == "refused"


def test_write_accepts_a_sequence(session) -> None:  # type: ignore[no-untyped-def]
    flows.write_generic(session, "3F00EF07|23|$", ["100045"])
    assert flows.read_generic(session, "3F00EF07|23|$").national() == "100045|"

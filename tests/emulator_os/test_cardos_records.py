"""READ RECORD: addressing, access rules, Le handling, encodings."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cardos_helpers import external_auth, make_card, sw_of, tx

from apdu.elements import CardIdentification, decode_file
from apdu.tlv import parse_records
from card_model.demo import demo_ca, demo_holder, demo_key_set
from card_model.issuance import issue_card
from card_model.keys import KeyRole
from card_model.profile import load_profile
from card_model.values import Name
from emulator.card_os import CardOS


def test_domain_sheet_example_reads() -> None:
    card = make_card()
    assert tx(card, "00A4000002EF05") == (b"", 0x9000)
    assert tx(card, "00B2030400") == (bytes.fromhex("0304332E3030"), 0x9000)
    data, sw = tx(card, "00B2072C0B")
    assert sw == 0x9000 and data == bytes.fromhex("0709") + b"X00000019"


def test_read_all_ef05_decodes_to_demo_card_data() -> None:
    card = make_card()
    data, sw = tx(card, "00B2012D00")
    assert sw == 0x9000
    values = decode_file("EF05", data)
    _, card_data = demo_holder("gen3")
    assert values["card_id"] == CardIdentification(region="110102", serial=card_data.serial)
    assert values["spec_version"] == "3.00"
    assert values["issue_date"] == dt.date(2025, 3, 1)
    assert values["expiry_date"] == dt.date(2035, 2, 28)
    assert values["card_number"] == "X00000019"
    assert [tag for tag, _ in parse_records(data)] == [1, 2, 3, 4, 5, 6, 7]


def test_read_all_from_p1_skips_lower_records() -> None:
    card = make_card()
    data, sw = tx(card, "00B2052D00")
    assert sw == 0x9000
    assert [tag for tag, _ in parse_records(data)] == [5, 6, 7]


def test_ef06_needs_reading_key_authentication() -> None:
    card = make_card()
    assert sw_of(card, "00B2083400") == 0x6982
    assert sw_of(card, "00B2013500") == 0x6982
    assert external_auth(card, KeyRole.RK) == 0x9000
    data, sw = tx(card, "00B2013500")
    assert sw == 0x9000
    values = decode_file("EF06", data)
    holder, _ = demo_holder("gen3")
    assert values["ssn"] == holder.ssn.value
    assert values["name"] == "张三"
    assert values["gender"] == "1"
    assert values["ethnicity"] == "01"
    assert values["birthplace"] == "110102"
    assert values["birth_date"] == dt.date(1973, 5, 21)
    assert "name_extension" not in values
    assert sw_of(card, "00B24E3400") == 0x6A83  # short name: no extension record


def test_eak_does_not_open_ef06() -> None:
    card = make_card()
    assert external_auth(card, KeyRole.EAK) == 0x9000
    assert sw_of(card, "00B2083400") == 0x6982


@pytest.mark.parametrize("how", ["reset", "power_off"])
def test_reset_clears_security_state(how: str) -> None:
    card = make_card()
    assert external_auth(card) == 0x9000
    assert sw_of(card, "00B2083400") == 0x9000
    getattr(card, how)()
    assert sw_of(card, "00B2083400") == 0x6982


def test_gen1_holder_file_readable_without_authentication() -> None:
    card = make_card(1)
    data, sw = tx(card, "00B2013500")
    assert sw == 0x9000 and decode_file("EF06", data)["name"] == "王五"
    data, sw = tx(card, "00B2032C00")
    assert data[2:] == b"1.00"


def test_gen2_needs_reading_key() -> None:
    card = make_card(2)
    assert sw_of(card, "00B2083400") == 0x6982
    assert external_auth(card) == 0x9000
    data, sw = tx(card, "00B2083400")
    assert sw == 0x9000 and data[2:] == b"110105196209152006"


def test_long_name_uses_extension_record() -> None:
    card = make_card(holder="x_long_name")
    assert external_auth(card) == 0x9000
    data, sw = tx(card, "00B2013500")
    assert sw == 0x9000
    values = decode_file("EF06", data)
    holder, _ = demo_holder("x_long_name")
    assert values["name"] + values["name_extension"] == holder.name.value
    assert len(values["name"].encode("gbk")) <= 30


def test_read_all_longer_than_256_bytes_chains_with_61xx() -> None:
    holder, card_data = demo_holder("gen3")
    long_holder = dataclasses.replace(holder, name=Name("长" * 120))
    image = issue_card(load_profile("gen3"), long_holder, card_data, demo_key_set(), ca=demo_ca())
    card = CardOS(image, interface="contactless")
    assert external_auth(card) == 0x9000
    first, sw = tx(card, "00B2013500")
    assert len(first) == 256 and sw & 0xFF00 == 0x6100
    rest, sw = tx(card, f"00C00000{sw & 0xFF:02X}")
    assert sw == 0x9000
    values = decode_file("EF06", first + rest)
    assert values["name"] + values["name_extension"] == "长" * 120


def test_wrong_le_answers_6cxx_then_exact_le_works() -> None:
    card = make_card()
    assert sw_of(card, "00B2032C02") == 0x6C06
    assert tx(card, "00B2032C06") == (bytes.fromhex("0304332E3030"), 0x9000)
    assert sw_of(card, "00B2012D10") & 0xFF00 == 0x6C00


def test_read_record_without_le_reads_whole_record() -> None:
    assert tx(make_card(), "00B2032C") == (bytes.fromhex("0304332E3030"), 0x9000)


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00B2082C00", 0x6A83),  # tag 08 is not in EF05
        ("00B2097C00", 0x6A82),  # SFI 15 does not exist
        ("00B2030400", 0x6986),  # no current EF
        ("00B2032E00", 0x6A86),  # P2 mode 6
        ("00B2002C00", 0x6A86),  # record 0
        ("00B2016C00", 0x6981),  # SFI 13 is a binary file
    ],
)
def test_read_record_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw


def test_read_record_on_current_binary_ef_is_incompatible() -> None:
    card = make_card()
    tx(card, "00A4000002EF0D")
    assert sw_of(card, "00B2010400") == 0x6981


def test_sfi_read_makes_file_current() -> None:
    card = make_card()
    tx(card, "00B2072C00")
    assert tx(card, "00B2030400")[1] == 0x9000


def test_ef07_contact_records() -> None:
    card = make_card()
    assert sw_of(card, "00B2203C00") == 0x6982
    external_auth(card)
    data, sw = tx(card, "00B2013D00")
    assert sw == 0x9000
    values = decode_file("EF07", data)
    assert values["address"] == "北京市西城区示例街1号"
    assert values["postcode"] == "100032"
    assert len(parse_records(data)[0][1]) == 80  # padded to the declared length

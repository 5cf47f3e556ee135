"""Data-element codecs (construct) and the ELEMENTS table."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.elements import (
    ELEMENTS,
    FILES,
    CardIdentification,
    bcd_date,
    bcd_digits,
    bcd_region,
    card_id,
    decode_file,
    decode_pin,
    element,
    elements_of,
    encode_pin,
)
from apdu.errors import InvalidInput, PinEntryError, ProtocolError
from apdu.tlv import encode_record

CARD_ID_HEX = "110102D1560000050000000012345678"


def test_table_matches_card_os() -> None:
    assert sorted(e.tag for e in elements_of("EF05")) == [1, 2, 3, 4, 5, 6, 7]
    assert sorted(e.tag for e in elements_of("EF06")) == [8, 9, 10, 11, 12, 13, 0x4E]
    assert sorted(e.tag for e in elements_of("EF07")) == [0x20, 0x21, 0x22, 0x23]
    assert {name: v[1] for name, v in FILES.items()} == {
        "EF05": 5,
        "EF06": 6,
        "EF07": 7,
    }
    lengths = {e.name: e.length for e in ELEMENTS.values()}
    assert lengths["card_id"] == 16 and lengths["name"] == 30 and lengths["address"] == 80
    assert lengths["phone"] == 20 and lengths["occupation"] == 30 and lengths["postcode"] == 6
    assert element("ssn").tag == 8 and element(0x0D).name == "birth_date"
    with pytest.raises(InvalidInput):
        element("nope")


def test_every_element_round_trips_a_sample() -> None:
    samples = {
        "card_id": CardIdentification("110102", bytes.fromhex("0000000012345678")),
        "card_type": "3",
        "spec_version": "3.00",
        "init_org": bytes(range(12)),
        "issue_date": dt.date(2025, 3, 1),
        "expiry_date": dt.date(2035, 2, 28),
        "card_number": "X00000019",
        "ssn": "110102197305211008",
        "name": "张三",
        "name_extension": "·买买提·艾力",
        "gender": "1",
        "ethnicity": "01",
        "birthplace": "110102",
        "birth_date": dt.date(1973, 5, 21),
        "address": "北京市西城区复兴门内大街1号",
        "phone": "13800138000",
        "occupation": "工程师",
        "postcode": "100031",
    }
    assert set(samples) == {e.name for e in ELEMENTS.values()}
    for elem in ELEMENTS.values():
        raw = elem.encode(samples[elem.name])
        if elem.length:
            assert len(raw) == elem.length, elem.name
        assert elem.decode(raw) == samples[elem.name], elem.name


def test_spec_examples() -> None:
    # domain sheet: "00 B2 03 04 00 answers 03 04 33 2E 30 30"
    assert element("spec_version").encode_record("3.00") == bytes.fromhex("0304332E3030")
    assert element("issue_date").encode("2025-03-01") == bytes.fromhex("20250301")
    assert element("ethnicity").encode("01") == b"\x01"
    assert element("birthplace").encode("110102") == bytes.fromhex("110102")


def test_gbk_name_padding() -> None:
    raw = element("name").encode("张三")
    assert raw == "张三".encode("gbk") + b" " * 26
    assert element("name").decode(raw) == "张三"


def test_card_identification() -> None:
    cid = element("card_id").decode(bytes.fromhex(CARD_ID_HEX))
    assert cid.region == "110102" and cid.serial == bytes.fromhex("0000000012345678")
    assert cid.rid == bytes.fromhex("D156000005")
    assert cid.hex() == CARD_ID_HEX and cid.diversification_factor == cid.serial
    assert CardIdentification.from_hex(CARD_ID_HEX.lower()) == cid
    with pytest.raises(InvalidInput):
        CardIdentification.from_hex("zz")
    with pytest.raises(InvalidInput):
        CardIdentification.from_hex(CARD_ID_HEX[:-2])


@pytest.mark.parametrize(
    ("name", "raw_hex", "message"),
    [
        ("issue_date", "20251301", "calendar"),
        ("issue_date", "20230229", "calendar"),
        ("issue_date", "2025A301", "BCD"),
        ("issue_date", "202503", "expected 4"),
        ("birthplace", "990102", "province"),
        ("birthplace", "11010F", "BCD"),
        ("ethnicity", "57", "3304"),
        ("ethnicity", "00", "3304"),
        ("card_id", "110102D1560000060000000012345678", "RID"),
        ("card_id", "000102D1560000050000000012345678", "province"),
        ("name", "80" * 30, "GBK"),
        ("name", "D5C5" + "00" * 28, "control"),
        ("spec_version", "332E3080", "ASCII"),
        ("card_type", "41", "digits"),
        ("ssn", "31313031303231393733303532313130305A", "17 digits"),
        ("postcode", "31303030332D", "digits"),
        ("init_org", "00", "expected 12"),
    ],
)
def test_decode_errors_name_the_problem(name: str, raw_hex: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        element(name).decode(bytes.fromhex(raw_hex))
    assert name in str(info.value) or element(name).name in str(info.value)


def test_decode_errors_do_not_leak_values() -> None:
    with pytest.raises(ProtocolError) as info:
        element("ssn").decode(b"11010219730521100Z")
    assert "1101" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("name", "x" * 31, "length"),
        ("name", "\U0001f600", "chars"),
        ("name", "张三 ", "chars"),
        ("name", "a\x00b", "chars"),
        ("name", 5, "chars"),
        ("phone", "138 0013 8000 0000 0000", "length"),
        ("phone", "电话", "chars"),
        ("postcode", "10003", "length"),
        ("postcode", "1000a1", "chars"),
        ("issue_date", "2025-02-30", "chars"),
        ("issue_date", 20250301, "chars"),
        ("birthplace", "11010", "length"),
        ("birthplace", "990102", "chars"),
        ("ethnicity", "60", "chars"),
        ("init_org", bytes(11), "length"),
        ("ssn", "11010219730521100", "chars"),
    ],
)
def test_encode_errors(name: str, value: object, kind: str) -> None:
    with pytest.raises(InvalidInput) as info:
        element(name).encode(value)
    assert info.value.kind == kind


def test_ssn_lowercase_x_is_normalised() -> None:
    assert element("ssn").encode("11010219730521100x") == b"11010219730521100X"


def test_decode_file() -> None:
    data = (
        element("spec_version").encode_record("3.00")
        + element("card_number").encode_record("X00000019")
        + element("issue_date").encode_record(dt.date(2025, 3, 1))
    )
    assert decode_file("EF05", data) == {
        "spec_version": "3.00",
        "card_number": "X00000019",
        "issue_date": dt.date(2025, 3, 1),
    }
    with pytest.raises(ProtocolError, match="unexpected record tag 09"):
        decode_file("EF05", encode_record(9, b"x"))
    with pytest.raises(ProtocolError, match="twice"):
        decode_file("EF05", data + element("spec_version").encode_record("3.00"))
    with pytest.raises(InvalidInput):
        decode_file("EF99", b"")


def test_generic_codecs() -> None:
    assert bcd_digits(2).decode(b"\x12\x34") == "1234"
    assert bcd_region.decode(bytes.fromhex("110105")) == "110105"
    assert card_id.size == 16
    assert bcd_date.encode(dt.datetime(2024, 2, 29, 12, 0)) == bytes.fromhex("20240229")


# -- PIN block --------------------------------------------------------------------


def test_pin_packing() -> None:
    assert encode_pin("123456") == bytes.fromhex("123456")
    assert encode_pin("12345") == bytes.fromhex("12345F")
    assert decode_pin(bytes.fromhex("123456")) == "123456"
    assert decode_pin(bytes.fromhex("12345F")) == "12345"


def test_pin_errors_do_not_contain_the_pin() -> None:
    with pytest.raises(InvalidInput) as info:
        encode_pin("12345x")
    assert "12345" not in str(info.value) and info.value.national_code == -41
    with pytest.raises(PinEntryError) as info2:
        encode_pin("123")
    assert info2.value.national_code == -33 and "123" not in str(info2.value).replace("3 digits", "")
    with pytest.raises(ProtocolError):
        decode_pin(bytes.fromhex("12A456"))
    with pytest.raises(ProtocolError):
        decode_pin(bytes.fromhex("12"))


@given(st.text(alphabet="0123456789", min_size=4, max_size=12))
def test_pin_round_trip(pin: str) -> None:
    assert decode_pin(encode_pin(pin)) == pin


@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_date_round_trip(value: dt.date) -> None:
    assert bcd_date.decode(bcd_date.encode(value)) == value


@given(
    st.text(
        alphabet=st.characters(codec="gbk", min_codepoint=0x20, exclude_characters="\x7f"),
        max_size=15,
    )
)
def test_gbk_round_trip(text: str) -> None:
    elem = element("name")
    try:
        raw = elem.encode(text)
    except InvalidInput:
        return  # too long in GBK or ends with a space
    assert elem.decode(raw) == text

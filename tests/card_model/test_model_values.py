"""Value objects: validation, national codes, hypothesis round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import InvalidInput
from card_model.errors import InvalidCardIdCode, InvalidCharacters, InvalidLength, InvalidValue
from card_model.values import (
    Bank,
    BcdDate,
    CardIdCode,
    CardNumber,
    Ethnicity,
    Gender,
    Name,
    RegionCode,
    Ssn,
    beijing_districts,
    ethnicity_names,
    initial_pin,
    partner_banks,
    ssn_check_digit,
)

birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))


@st.composite
def ssns(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(sorted(beijing_districts())))
    born = draw(birth_dates)
    sequence = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + ssn_check_digit(first17)


@given(ssns())
def test_valid_ssns_accepted(text: str) -> None:
    ssn = Ssn(text)
    assert ssn.value == text
    assert ssn.birth_date == dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    assert ssn.initial_pin == text[-6:].replace("X", "0")
    assert len(ssn.initial_pin) == 6 and ssn.initial_pin.isdigit()
    assert text not in repr(ssn) and text not in str(ssn)
    assert text[-6:] not in repr(ssn)


@given(ssns(), st.integers(0, 16), st.integers(1, 9))
def test_single_digit_change_is_detected(text: str, position: int, delta: int) -> None:
    changed = text[:position] + str((int(text[position]) + delta) % 10) + text[position + 1 :]
    with pytest.raises(InvalidValue):
        Ssn(changed)


def test_ssn_examples() -> None:
    assert Ssn("110102197305211008").initial_pin == "211008"
    x = Ssn.parse(" 11010819850612101x ")
    assert x.value == "11010819850612101X"
    assert initial_pin(x) == "121010"


@pytest.mark.parametrize(
    ("text", "error", "code"),
    [
        ("11010219730521100", InvalidLength, -42),
        ("1101021973052110089", InvalidLength, -42),
        ("11010219730521100A", InvalidCharacters, -41),
        ("11010219730521100x", InvalidCharacters, -41),  # the constructor wants upper case
        ("110102197305211009", InvalidValue, -23),
        ("110102197302301008", InvalidValue, -23),  # 30 February
        (18, InvalidCharacters, -41),
    ],
)
def test_ssn_errors(text: object, error: type[InvalidValue], code: int) -> None:
    with pytest.raises(error) as info:
        Ssn(text)  # type: ignore[arg-type]
    assert info.value.national_code == code
    assert isinstance(info.value, InvalidInput)
    assert str(text) not in str(info.value) and str(text) not in info.value.message_zh
    assert info.value.to_dict()["message"].startswith("社会保障号码")


gbk_chars = st.characters(codec="gbk", min_codepoint=0x20).filter(lambda c: c.strip() and ord(c) != 0x7F)


@given(st.text(gbk_chars, min_size=1, max_size=120))
def test_name_split_fits_field(text: str) -> None:
    try:
        name = Name(text)
    except InvalidLength:
        assert len(text.strip().encode("gbk")) > 255
        return
    field, extension = name.split()
    assert field + extension == name.value
    assert len(field.encode("gbk")) <= 30
    assert bool(extension) == (len(name.value.encode("gbk")) > 30)
    assert Name.join(field, extension) == name


@pytest.mark.parametrize(
    ("text", "error"), [("", InvalidLength), ("张\x01", InvalidCharacters), ("😀", InvalidCharacters)]
)
def test_name_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        Name(text)


def test_codes_have_texts() -> None:
    assert Gender("1").text == "男" and Gender("2").text_en == "female" and Gender("9").text == "未说明的性别"
    assert len(ethnicity_names()) == 58
    assert Ethnicity("01").text == "汉族" and Ethnicity("56").text == "基诺族" and Ethnicity("98").text
    assert Ethnicity("11").to_bcd() == b"\x11"
    assert RegionCode.for_issuance("110108").text == "海淀区"
    assert RegionCode("110103").text == "崇文区"
    assert RegionCode("650102").text is None
    assert len(beijing_districts()) == 17
    assert len(partner_banks()) == 15


@pytest.mark.parametrize(
    ("factory", "value", "error"),
    [
        (Gender, "3", InvalidValue),
        (Ethnicity, "57", InvalidValue),
        (Ethnicity, "1", InvalidLength),
        (Ethnicity, "a1", InvalidCharacters),
        (RegionCode, "990102", InvalidValue),
        (RegionCode.for_issuance, "120101", InvalidValue),
        (RegionCode.for_issuance, "110000", InvalidValue),
        (CardNumber, "X0000001", InvalidLength),
        (CardNumber, "x00000019", InvalidCharacters),
        (Bank.resolve, "Some Bank", InvalidValue),
    ],
)
def test_code_errors(factory: object, value: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        factory(value)  # type: ignore[operator]


@given(birth_dates)
def test_bcd_date_round_trip(day: dt.date) -> None:
    value = BcdDate(day)
    assert BcdDate.from_bcd(value.to_bcd()) == value
    assert BcdDate.parse(value.iso()) == value
    assert BcdDate.parse(value.to_bcd().hex()) == value


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2025-02-30", InvalidValue),
        ("2025/02/01", InvalidCharacters),
        ("18991231", InvalidValue),
        ("2025-1-1", InvalidCharacters),
    ],
)
def test_bcd_date_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        BcdDate.parse(text, "issue_date")


def test_bcd_date_from_bad_bcd() -> None:
    with pytest.raises(InvalidCharacters):
        BcdDate.from_bcd(bytes.fromhex("2025AA01"))


@given(st.sampled_from(sorted(beijing_districts())), st.binary(min_size=8, max_size=8))
def test_card_id_round_trip(region: str, serial: bytes) -> None:
    code = CardIdCode(RegionCode(region), serial)
    raw = code.to_bytes()
    assert len(raw) == 16 and raw[3:8] == bytes.fromhex("D156000005")
    assert CardIdCode.from_bytes(raw) == code
    assert CardIdCode.from_hex(code.hex().lower()) == code
    assert code.factor == serial


@pytest.mark.parametrize(
    "text",
    [
        "110102D156000006" + "00" * 8,  # wrong RID
        "990102D156000005" + "00" * 8,  # bad province
        "110102D156000005" + "00" * 7,
        "110102D156000005" + "GG" * 8,
    ],
)
def test_card_id_errors_are_national_minus_20(text: str) -> None:
    with pytest.raises(InvalidCardIdCode) as info:
        CardIdCode.from_hex(text)
    assert info.value.national_code == -20


def test_bank_aliases() -> None:
    assert Bank.resolve("北京银行").code == "BOB"
    assert Bank.resolve("  bank   of beijing ").code == "BOB"
    assert Bank.resolve("工商银行").code == "ICBC"

"""Validated value objects of the holder and card data.

Each class validates on construction (``Cls(value)``) or through a
``parse`` class method that also accepts the usual outside spellings, and
raises a specific :mod:`card_model.errors` exception (national codes -41
illegal characters, -42 wrong length, -20 bad card identification code,
-23 data not valid).  Code tables (ethnic groups, Beijing districts, sex
codes, partner banks) are data under ``card_model/data/codes``.

A social security number is personal data: :class:`Ssn`'s ``repr`` and
``str`` show only its region prefix; use ``.value`` for the full number.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from card_model._data import load_data
from card_model.errors import (
    InvalidCardIdCode,
    InvalidCharacters,
    InvalidLength,
    InvalidValue,
)

__all__ = [
    "Bank",
    "BcdDate",
    "CardIdCode",
    "CardNumber",
    "Ethnicity",
    "Gender",
    "Name",
    "RegionCode",
    "Ssn",
    "ascii_text",
    "beijing_districts",
    "ethnicity_names",
    "gbk_text",
    "initial_pin",
    "partner_banks",
    "ssn_check_digit",
]


def _limits() -> dict[str, Any]:
    return load_data("values.toml")


def _require_text(field_name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidCharacters(field_name, "not_text")
    return value


def _no_control(field_name: str, text: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidCharacters(field_name, "control_chars")


def gbk_text(field_name: str, value: object, max_bytes: int, *, allow_empty: bool = False) -> str:
    """Validate text stored in GBK within ``max_bytes``; returns it stripped of outer spaces."""
    text = _require_text(field_name, value).strip()
    _no_control(field_name, text)
    if not text and not allow_empty:
        raise InvalidLength(field_name, "empty")
    try:
        raw = text.encode("gbk")
    except UnicodeEncodeError:
        raise InvalidCharacters(field_name, "not_gbk") from None
    if len(raw) > max_bytes:
        raise InvalidLength(field_name, "too_long", f"at most {max_bytes} GBK bytes")
    return text


def ascii_text(field_name: str, value: object, max_chars: int, *, digits_only: bool = False) -> str:
    """Validate printable ASCII (or digits only) text of at most ``max_chars``."""
    text = _require_text(field_name, value).strip()
    if digits_only and not (text.isascii() and text.isdigit()):
        raise InvalidCharacters(field_name, "not_digits")
    if not all(0x20 <= ord(ch) < 0x7F for ch in text):
        raise InvalidCharacters(field_name, "not_ascii")
    if not text:
        raise InvalidLength(field_name, "empty")
    if len(text) > max_chars:
        raise InvalidLength(field_name, "too_long", f"at most {max_chars} characters")
    return text


def _digits(field_name: str, value: object, count: int) -> str:
    text = _require_text(field_name, value).strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidCharacters(field_name, "not_digits")
    if len(text) != count:
        raise InvalidLength(field_name, "wrong_length", f"{count} digits expected")
    return text


# -- social security number ----------------------------------------------------------

_SSN_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def ssn_check_digit(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise InvalidCharacters("ssn", "ssn_shape")
    chars: str = _limits()["ssn"]["check_chars"]
    total = sum(int(c) * w for c, w in zip(first17, _SSN_WEIGHTS, strict=True))
    return chars[total % 11]


@dataclass(frozen=True, slots=True)
class Ssn:
    """An 18-character social security (citizen ID) number with a valid
    GB 11643 check character and a calendar birth date; ``X`` upper case."""

    value: str = field(repr=False)

    def __post_init__(self) -> None:
        text = _require_text("ssn", self.value)
        if len(text) != 18:
            raise InvalidLength("ssn", "wrong_length", "18 characters expected")
        if not (text[:17].isascii() and text[:17].isdigit() and (text[17].isdigit() or text[17] == "X")):
            raise InvalidCharacters("ssn", "ssn_shape")
        try:
            _dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
        except ValueError:
            raise InvalidValue("ssn", "ssn_birth_date") from None
        if ssn_check_digit(text[:17]) != text[17]:
            raise InvalidValue("ssn", "check_digit")

    @classmethod
    def parse(cls, value: object) -> Ssn:
        """Accept surrounding spaces and a lower-case ``x``."""
        text = _require_text("ssn", value).strip()
        return cls(text[:17] + text[17:].upper())

    @property
    def region(self) -> str:
        return self.value[:6]

    @property
    def birth_date(self) -> _dt.date:
        v = self.value
        return _dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))

    @property
    def initial_pin(self) -> str:
        """The initial service password: last 6 characters, ``X`` -> ``0``."""
        return initial_pin(self)

    def masked(self) -> str:
        return self.value[:6] + "*" * 12

    def __repr__(self) -> str:
        return f"Ssn({self.masked()})"

    def __str__(self) -> str:
        return self.masked()


def initial_pin(ssn: Ssn) -> str:
    """Initial PIN rule (docs/card-os.md §4): the last 6 characters of the
    social security number, an ``X`` replaced by ``0``."""
    x_digit: str = _limits()["pin"]["x_digit"]
    return ssn.value[-6:].replace("X", x_digit)


# -- name -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    """The holder's name in GBK: up to 30 bytes in EF06 tag 09, the rest in tag 4E."""

    value: str

    def __post_init__(self) -> None:
        limits = _limits()["name"]
        total = int(limits["field_bytes"]) + int(limits["extension_max_bytes"])
        text = gbk_text("name", self.value, total)
        if text != self.value:
            object.__setattr__(self, "value", text)

    def split(self) -> tuple[str, str]:
        """``(field part, extension part)``: the longest prefix of whole
        characters within 30 GBK bytes, and the rest ("" when it fits)."""
        limit = int(_limits()["name"]["field_bytes"])
        used = 0
        for index, ch in enumerate(self.value):
            size = len(ch.encode("gbk"))
            if used + size > limit:
                return self.value[:index], self.value[index:]
            used += size
        return self.value, ""

    @property
    def has_extension(self) -> bool:
        return bool(self.split()[1])

    @classmethod
    def join(cls, field_part: str, extension: str = "") -> Name:
        return cls(field_part.rstrip(" ") + extension)

    def __str__(self) -> str:
        return self.value


# -- coded values ----------------------------------------------------------------------


@cache
def _gender_table() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = load_data("codes", "gender.toml")["gender"]
    return table


@cache
def ethnicity_names() -> dict[str, str]:
    """GB/T 3304 code -> Chinese name (01..56, 97, 98)."""
    table: dict[str, str] = load_data("codes", "ethnicity.toml")["ethnicity"]
    return dict(table)


@cache
def beijing_districts() -> dict[str, str]:
    """Issuance region codes (Beijing districts) -> Chinese name."""
    table: dict[str, str] = load_data("codes", "regions.toml")["beijing"]
    return dict(table)


@cache
def _former_beijing() -> dict[str, str]:
    table: dict[str, str] = load_data("codes", "regions.toml")["beijing_former"]
    return dict(table)


@cache
def _provinces() -> frozenset[str]:
    return frozenset(load_data("codes", "regions.toml")["provinces"])


@dataclass(frozen=True, slots=True)
class Gender:
    """GB/T 2261.1 sex code (``1`` male, ``2`` female, ``9`` unstated, ``0`` unknown)."""

    code: str

    def __post_init__(self) -> None:
        code = _require_text("gender", self.code)
        if code not in _gender_table():
            raise InvalidValue("gender", "unknown_code")

    @property
    def text(self) -> str:
        return _gender_table()[self.code]["zh"]

    @property
    def text_en(self) -> str:
        return _gender_table()[self.code]["en"]


@dataclass(frozen=True, slots=True)
class Ethnicity:
    """GB/T 3304 ethnicity code, two digits (``01`` 汉族 ... ``56``, ``97``, ``98``)."""

    code: str

    def __post_init__(self) -> None:
        code = _digits("ethnicity", self.code, 2)
        if code not in ethnicity_names():
            raise InvalidValue("ethnicity", "unknown_code")

    @property
    def text(self) -> str:
        return ethnicity_names()[self.code]

    def to_bcd(self) -> bytes:
        return bytes.fromhex(self.code)


@dataclass(frozen=True, slots=True)
class RegionCode:
    """GB/T 2260 six-digit region code with a valid province prefix."""

    code: str

    def __post_init__(self) -> None:
        code = _digits("region_code", self.code, 6)
        if code[:2] not in _provinces():
            raise InvalidValue("region_code", "bad_province")

    @classmethod
    def for_issuance(cls, code: object) -> RegionCode:
        """A Beijing district code (11xxxx) where cards are issued."""
        region = cls(_require_text("region_code", code).strip())
        if not region.is_beijing_district:
            raise InvalidValue("region_code", "not_beijing")
        return region

    @property
    def is_beijing(self) -> bool:
        return self.code.startswith("11")

    @property
    def is_beijing_district(self) -> bool:
        return self.code in beijing_districts()

    @property
    def text(self) -> str | None:
        """The Chinese name of a (current or former) Beijing district, else None."""
        return beijing_districts().get(self.code) or _former_beijing().get(self.code)

    def to_bcd(self) -> bytes:
        return bytes.fromhex(self.code)

    @classmethod
    def from_bcd(cls, raw: bytes) -> RegionCode:
        if len(raw) != 3:
            raise InvalidLength("region_code", "wrong_length", "3 BCD bytes expected")
        return cls(bytes(raw).hex())


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BCD_DATE = re.compile(r"[0-9]{8}")


@dataclass(frozen=True, slots=True, order=True)
class BcdDate:
    """A calendar date stored as 4 bytes BCD ``YYYYMMDD``."""

    value: _dt.date

    def __post_init__(self) -> None:
        if isinstance(self.value, _dt.datetime) or not isinstance(self.value, _dt.date):
            raise InvalidValue("date", "wrong_type")
        limits = _limits()["dates"]
        if not int(limits["min_year"]) <= self.value.year <= int(limits["max_year"]):
            raise InvalidValue("date", "date_range")

    @classmethod
    def parse(cls, value: object, field_name: str = "date") -> BcdDate:
        """From a ``date``, ``YYYY-MM-DD`` or ``YYYYMMDD``."""
        if isinstance(value, _dt.datetime):
            raise InvalidValue(field_name, "wrong_type")
        if isinstance(value, _dt.date):
            return cls._checked(value, field_name)
        text = _require_text(field_name, value).strip()
        if _ISO_DATE.fullmatch(text):
            text = text.replace("-", "")
        elif not _BCD_DATE.fullmatch(text):
            raise InvalidCharacters(field_name, "date_format")
        try:
            day = _dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise InvalidValue(field_name, "not_a_date") from None
        return cls._checked(day, field_name)

    @classmethod
    def _checked(cls, day: _dt.date, field_name: str) -> BcdDate:
        try:
            return cls(day)
        except InvalidValue as exc:
            raise InvalidValue(field_name, exc.reason) from None

    @classmethod
    def from_bcd(cls, raw: bytes, field_name: str = "date") -> BcdDate:
        if len(raw) != 4:
            raise InvalidLength(field_name, "wrong_length", "4 BCD bytes expected")
        return cls.parse(bytes(raw).hex(), field_name)

    def to_bcd(self) -> bytes:
        return bytes.fromhex(self.value.strftime("%Y%m%d"))

    def iso(self) -> str:
        return self.value.isoformat()

    def __str__(self) -> str:
        return self.iso()


# -- card identification --------------------------------------------------------------


def _rid() -> bytes:
    return bytes.fromhex(_limits()["card_id"]["rid"])


@dataclass(frozen=True, slots=True)
class CardIdCode:
    """Card identification code: region BCD (3) || RID ``D156000005`` (5) || issuer serial (8)."""

    region: RegionCode
    serial: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.region, RegionCode):
            raise InvalidCardIdCode("card_id", "wrong_type")
        if not isinstance(self.serial, bytes) or len(self.serial) != 8:
            raise InvalidCardIdCode("serial", "wrong_length", "8 bytes expected")

    def to_bytes(self) -> bytes:
        return self.region.to_bcd() + _rid() + self.serial

    def hex(self) -> str:
        return self.to_bytes().hex().upper()

    @property
    def factor(self) -> bytes:
        """The key diversification factor: the last 8 bytes (issuer serial)."""
        return self.serial

    @classmethod
    def from_bytes(cls, raw: bytes) -> CardIdCode:
        raw = bytes(raw)
        if len(raw) != 16:
            raise InvalidCardIdCode("card_id", "wrong_length", "16 bytes expected")
        if raw[3:8] != _rid():
            raise InvalidCardIdCode("card_id", "bad_rid")
        try:
            region = RegionCode(raw[:3].hex())
        except InvalidValue:
            raise InvalidCardIdCode("card_id", "bad_province") from None
        return cls(region, raw[8:])

    @classmethod
    def from_hex(cls, text: object) -> CardIdCode:
        value = _require_text("card_id", text).strip()
        if len(value) != 32:
            raise InvalidCardIdCode("card_id", "wrong_length", "32 hexadecimal digits expected")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise InvalidCardIdCode("card_id", "not_hex") from None
        return cls.from_bytes(raw)


@dataclass(frozen=True, slots=True)
class CardNumber:
    """The card number printed on the card (EF05 tag 07), e.g. ``X00000019``."""

    value: str

    def __post_init__(self) -> None:
        text = _require_text("card_number", self.value)
        if len(text) != 9:
            raise InvalidLength("card_number", "wrong_length", "9 characters expected")
        if not re.fullmatch(_limits()["card_number"]["pattern"], text):
            raise InvalidCharacters("card_number", "card_number_shape")

    def __str__(self) -> str:
        return self.value


# -- partner bank -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bank:
    """One of the 15 partner banks (``card_model/data/codes/banks.toml``)."""

    code: str
    name_en: str
    name_zh: str
    aliases: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, text: object) -> Bank:
        """Look up by code, English or Chinese name or alias (case and spaces ignored)."""
        key = _bank_key(_require_text("bank", text))
        bank = _bank_index().get(key)
        if bank is None:
            raise InvalidValue("bank", "unknown_bank")
        return bank


def _bank_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@cache
def partner_banks() -> tuple[Bank, ...]:
    rows = load_data("codes", "banks.toml")["bank"]
    return tuple(Bank(r["code"], r["name_en"], r["name_zh"], tuple(r.get("aliases", ()))) for r in rows)


@cache
def _bank_index() -> dict[str, Bank]:
    index: dict[str, Bank] = {}
    for bank in partner_banks():
        for name in (bank.code, bank.name_en, bank.name_zh, *bank.aliases):
            index[_bank_key(name)] = bank
    return index

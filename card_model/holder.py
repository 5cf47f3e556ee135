"""Holder and card data (the ``[holder]`` / ``[card]`` TOML of interfaces.md).

:func:`parse_holder_toml` / :func:`load_holder_file` give a validated
``(HolderData, CardData)`` pair; :meth:`HolderData.from_mapping` and
:meth:`CardData.from_mapping` build each from a mapping of the JSON field
names.  Optional holder contact fields (EF07): ``address``, ``phone``,
``occupation``, ``postcode``.  Optional card fields: ``serial`` (16 hex
digits, the issuer serial inside the card identification code; default
derived from the card number), ``card_type`` and ``init_org`` (default from
the profile).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from card_model._data import load_data
from card_model.errors import HolderFileError, InvalidCharacters, InvalidLength, InvalidValue
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
    ascii_text,
    gbk_text,
)
from sm_crypto.sm3 import sm3

__all__ = ["CardData", "HolderData", "derive_serial", "load_holder_file", "parse_holder_toml"]

HOLDER_FIELDS = frozenset(
    {
        "ssn",
        "name",
        "gender",
        "ethnicity",
        "birthplace",
        "birth_date",
        "address",
        "phone",
        "occupation",
        "postcode",
    }
)
CARD_FIELDS = frozenset(
    {"card_number", "region_code", "issue_date", "expiry_date", "bank", "serial", "card_type", "init_org"}
)
SERIAL_LABEL = "sscard issuer serial"


def _contact_limits() -> dict[str, int]:
    table: dict[str, int] = load_data("values.toml")["contact"]
    return table


def _ssn(value: Any) -> Ssn:
    """An SSN of holder data as stored on the card and in the registry: the
    check character ``X`` in upper case only (a lower-case ``x`` is -41, as
    the registry refuses it); surrounding spaces are ignored."""
    return Ssn(value.strip() if isinstance(value, str) else value)


def _required(data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        raise InvalidValue(key, "missing")
    return data[key]


def _unknown(data: Mapping[str, Any], allowed: frozenset[str], field_name: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise HolderFileError(field_name, "unexpected", ", ".join(sorted(unknown)))


@dataclass(frozen=True, slots=True)
class HolderData:
    """The holder's key items (EF06) and non-key contact data (EF07)."""

    ssn: Ssn
    name: Name
    gender: Gender
    ethnicity: Ethnicity
    birthplace: RegionCode
    birth_date: BcdDate
    address: str | None = None
    phone: str | None = None
    occupation: str | None = None
    postcode: str | None = None

    def __post_init__(self) -> None:
        if self.ssn.birth_date != self.birth_date.value:
            raise InvalidValue("birth_date", "birth_date_mismatch")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HolderData:
        _unknown(data, HOLDER_FIELDS, "holder_file")
        limits = _contact_limits()
        address = data.get("address")
        phone = data.get("phone")
        occupation = data.get("occupation")
        postcode = data.get("postcode")
        return cls(
            ssn=_ssn(_required(data, "ssn")),
            name=Name(_required(data, "name")),
            gender=Gender(str(_required(data, "gender"))),
            ethnicity=Ethnicity(_required(data, "ethnicity")),
            birthplace=_region("birthplace", _required(data, "birthplace")),
            birth_date=BcdDate.parse(_required(data, "birth_date"), "birth_date"),
            address=None if address is None else gbk_text("address", address, limits["address_bytes"]),
            phone=None if phone is None else ascii_text("phone", phone, limits["phone_chars"]),
            occupation=None
            if occupation is None
            else gbk_text("occupation", occupation, limits["occupation_bytes"]),
            postcode=None if postcode is None else _postcode(postcode, limits["postcode_digits"]),
        )

    def to_mapping(self) -> dict[str, str]:
        out = {
            "ssn": self.ssn.value,
            "name": self.name.value,
            "gender": self.gender.code,
            "ethnicity": self.ethnicity.code,
            "birthplace": self.birthplace.code,
            "birth_date": self.birth_date.iso(),
        }
        for key in ("address", "phone", "occupation", "postcode"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def _postcode(value: object, digits: int) -> str:
    text = ascii_text("postcode", value, digits, digits_only=True)
    if len(text) != digits:
        raise InvalidLength("postcode", "wrong_length", f"{digits} digits expected")
    return text


def _region(field_name: str, value: object) -> RegionCode:
    try:
        return RegionCode(value if not isinstance(value, str) else value.strip())  # type: ignore[arg-type]
    except InvalidValue as exc:
        raise type(exc)(field_name, exc.reason, exc.detail) from None


def derive_serial(card_number: CardNumber) -> bytes:
    """Default issuer serial: SM3(label | card number)[:8] (deterministic)."""
    return sm3(f"{SERIAL_LABEL}|{card_number.value}".encode())[:8]


@dataclass(frozen=True, slots=True)
class CardData:
    """Card facts chosen at issuance (EF05 and the card identification code)."""

    card_number: CardNumber
    region_code: RegionCode
    issue_date: BcdDate
    expiry_date: BcdDate
    bank: Bank
    serial: bytes
    card_type: str | None = None
    init_org: bytes | None = None

    def __post_init__(self) -> None:
        if self.expiry_date <= self.issue_date:
            raise InvalidValue("expiry_date", "expiry_before_issue")
        if not isinstance(self.serial, bytes) or len(self.serial) != 8:
            raise InvalidLength("serial", "wrong_length", "8 bytes expected")
        if self.card_type is not None and not (
            len(self.card_type) == 1 and self.card_type.isascii() and self.card_type.isdigit()
        ):
            raise InvalidCharacters("card_type", "not_digits")
        if self.init_org is not None and len(self.init_org) != 12:
            raise InvalidLength("init_org", "wrong_length", "12 bytes expected")

    @property
    def card_id(self) -> CardIdCode:
        return CardIdCode(self.region_code, self.serial)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CardData:
        _unknown(data, CARD_FIELDS, "holder_file")
        number = CardNumber(_required(data, "card_number"))
        serial_text = data.get("serial")
        serial = derive_serial(number) if serial_text is None else _hex_field("serial", serial_text, 8)
        init_text = data.get("init_org")
        region = _required(data, "region_code")
        return cls(
            card_number=number,
            region_code=RegionCode.for_issuance(region),
            issue_date=BcdDate.parse(_required(data, "issue_date"), "issue_date"),
            expiry_date=BcdDate.parse(_required(data, "expiry_date"), "expiry_date"),
            bank=Bank.resolve(_required(data, "bank")),
            serial=serial,
            card_type=None if data.get("card_type") is None else str(data["card_type"]),
            init_org=None if init_text is None else _hex_field("init_org", init_text, 12),
        )

    def to_mapping(self) -> dict[str, str]:
        out = {
            "card_number": self.card_number.value,
            "region_code": self.region_code.code,
            "issue_date": self.issue_date.iso(),
            "expiry_date": self.expiry_date.iso(),
            "bank": self.bank.name_en,
            "serial": self.serial.hex().upper(),
        }
        if self.card_type is not None:
            out["card_type"] = self.card_type
        if self.init_org is not None:
            out["init_org"] = self.init_org.hex().upper()
        return out


def _hex_field(field_name: str, value: object, length: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidCharacters(field_name, "not_hex")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidCharacters(field_name, "not_hex") from None
    if len(raw) != length:
        raise InvalidLength(field_name, "wrong_length", f"{length} bytes expected")
    return raw


def parse_holder_toml(text: str) -> tuple[HolderData, CardData]:
    """Parse the holder TOML of interfaces.md (``[holder]`` and ``[card]``)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HolderFileError("holder_file", "syntax", f"line {getattr(exc, 'lineno', '?')}") from None
    _unknown(doc, frozenset({"holder", "card"}), "holder_file")
    holder = doc.get("holder")
    card = doc.get("card")
    if not isinstance(holder, dict):
        raise HolderFileError("holder_file", "missing", "[holder]")
    if not isinstance(card, dict):
        raise HolderFileError("holder_file", "missing", "[card]")
    return HolderData.from_mapping(holder), CardData.from_mapping(card)


def load_holder_file(path: str | os.PathLike[str]) -> tuple[HolderData, CardData]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise HolderFileError("holder_file", "unreadable") from None
    return parse_holder_toml(text)

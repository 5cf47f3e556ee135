"""The card's financial (bank) application, as far as sscard needs it.

Counter systems show the bank card number of the social security card's
financial application; sscard reads it through the EMV selection path
(PPSE / PSE, the application, GET PROCESSING OPTIONS, READ RECORD with tag
``5A``) and never writes it.  This module holds what the profile declares
(``[financial]``), the EMV data the virtual card serves, and the PAN of a
virtual card (a demo IIN per partner bank from ``data/financial.toml``,
account digits derived from the card identification code, Luhn check digit).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from apdu.tlv import Tlv
from card_model._data import load_data
from card_model.errors import IssuanceError, ProfileError
from sm_crypto.sm3 import sm3

__all__ = [
    "PPSE_NAME",
    "PSE_NAME",
    "FinancialSpec",
    "application_record",
    "luhn_digit",
    "parse_financial",
    "virtual_pan",
]

PSE_NAME = b"1PAY.SYS.DDF01"
PPSE_NAME = b"2PAY.SYS.DDF01"
TAG_RECORD = 0x70
TAG_PAN = 0x5A
TAG_EXPIRY = 0x5F24
TAG_EFFECTIVE = 0x5F25
TAG_COUNTRY = 0x5F28
TAG_PAN_SEQUENCE = 0x5F34
TAG_USAGE_CONTROL = 0x9F07
_KEYS = frozenset({"aid", "label", "priority", "pse_sfi", "record_sfi", "record_fid"})


@dataclass(frozen=True, slots=True)
class FinancialSpec:
    """``[financial]``: the application identifier and label, its priority
    in the directory, the PSE directory SFI, the SFI of the application
    record (the AFL), and the image FID keeping the record."""

    aid: bytes
    label: str
    priority: int
    pse_sfi: int
    record_sfi: int
    record_fid: int


def _fail(reason: str, where: str) -> ProfileError:
    return ProfileError("profile", reason, where)


def _number(table: dict[str, Any], key: str, low: int, high: int, *, hex_text: bool = False) -> int:
    value = table.get(key)
    if hex_text and isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise _fail("not_hex", f"financial.{key}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("missing" if value is None else "wrong_type", f"financial.{key}")
    if not low <= value <= high:
        raise _fail("wrong_length", f"financial.{key}")
    return value


def parse_financial(table: object, *, used_fids: frozenset[int]) -> FinancialSpec:
    """Validate ``[financial]`` (``used_fids``: FIDs already taken in the image)."""
    if not isinstance(table, dict):
        raise _fail("not_a_table", "financial")
    unknown = set(table) - _KEYS
    if unknown:
        raise _fail("unexpected", f"financial: {', '.join(sorted(unknown))}")
    aid_text = table.get("aid")
    if not isinstance(aid_text, str):
        raise _fail("missing", "financial.aid")
    try:
        aid = bytes.fromhex(aid_text)
    except ValueError:
        raise _fail("not_hex", "financial.aid") from None
    if not 5 <= len(aid) <= 16:
        raise _fail("wrong_length", "financial.aid")
    label = table.get("label", "")
    if not isinstance(label, str) or not label.isascii() or not 1 <= len(label) <= 16:
        raise _fail("wrong_type", "financial.label (1..16 ASCII characters)")
    spec = FinancialSpec(
        aid=aid,
        label=label,
        priority=_number(table, "priority", 1, 15),
        pse_sfi=_number(table, "pse_sfi", 1, 10),
        record_sfi=_number(table, "record_sfi", 1, 10),
        record_fid=_number(table, "record_fid", 1, 0xFFFE, hex_text=True),
    )
    if spec.record_fid in used_fids:
        raise _fail("inconsistent", "financial.record_fid: must differ from every file")
    return spec


def luhn_digit(digits: str) -> str:
    """The Luhn (ISO/IEC 7812) check digit of ``digits``."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def virtual_pan(bank_code: str, card_id: bytes) -> str:
    """The PAN of a virtual card of ``bank_code`` with identification code ``card_id``."""
    data = load_data("financial.toml")
    found = data["iin"].get(bank_code)
    if found is None:
        raise IssuanceError("bank", "unknown_code", "no IIN for the bank in data/financial.toml")
    iin = str(found)
    settings = data["pan"]
    width = int(settings["length"]) - len(iin) - 1
    digest = sm3(f"{settings['label']}|".encode() + card_id)
    account = str(int.from_bytes(digest, "big") % 10**width).zfill(width)
    body = iin + account
    return body + luhn_digit(body)


def _bcd_pan(pan: str) -> bytes:
    text = pan if len(pan) % 2 == 0 else pan + "F"
    return bytes.fromhex(text)


def _yymmdd(day: _dt.date) -> bytes:
    return bytes.fromhex(day.strftime("%y%m%d"))


def application_record(pan: str, issue: _dt.date, expiry: _dt.date) -> bytes:
    """Record 1 of the application file: ``70`` with PAN (5A), expiry (5F24),
    effective date (5F25), country (5F28), PAN sequence (5F34), AUC (9F07)."""
    settings = load_data("financial.toml")["pan"]
    children = (
        Tlv(TAG_PAN, _bcd_pan(pan)),
        Tlv(TAG_EXPIRY, _yymmdd(expiry)),
        Tlv(TAG_EFFECTIVE, _yymmdd(issue)),
        Tlv(TAG_COUNTRY, bytes.fromhex(str(settings["country"]))),
        Tlv(TAG_PAN_SEQUENCE, b"\x00"),
        Tlv(TAG_USAGE_CONTROL, bytes.fromhex(str(settings["usage_control"]))),
    )
    return Tlv(TAG_RECORD, children=children).encode()

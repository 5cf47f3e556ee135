"""Money amounts of the wallet: typed in yuan, carried in fen.

:func:`parse_amount` turns what a person types (``"12"``, ``"12.5"``,
``"12.50"``) into fen; :func:`check_amount` validates an amount in fen;
:func:`format_fen` prints fen as yuan with two decimals.  Every bad amount
raises :class:`~terminal.flows.wallet_errors.InvalidAmount` with its reason
(format, zero, negative, too large).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from terminal._data import load_data
from terminal.flows.wallet_errors import InvalidAmount

__all__ = ["check_amount", "format_fen", "parse_amount"]

_NUMBER = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("wallet")["amount"]
    return table


def check_amount(fen: object) -> int:
    """``fen`` if it is a positive whole number of fen the purse can carry."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise InvalidAmount("format")
    if fen < 0:
        raise InvalidAmount("negative")
    if fen == 0:
        raise InvalidAmount("zero")
    if fen > int(_settings()["max_fen"]):
        raise InvalidAmount("too_large")
    return fen


def parse_amount(text: object) -> int:
    """Fen of an amount typed in yuan (at most two decimals)."""
    if not isinstance(text, str):
        raise InvalidAmount("format")
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise InvalidAmount("format")
    sign, whole, decimals = match.groups()
    decimals = decimals or ""
    places = int(_settings()["max_decimals"])
    if len(decimals) > places:
        raise InvalidAmount("format")
    if len(whole) > 12:
        raise InvalidAmount("too_large")
    fen = int(whole) * 10**places + int(decimals.ljust(places, "0") or "0")
    if sign == "-" and fen:
        raise InvalidAmount("negative")
    return check_amount(fen)


def format_fen(fen: int) -> str:
    """``1234`` -> ``"12.34"``."""
    places = int(_settings()["max_decimals"])
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 10**places)
    return f"{sign}{whole}.{part:0{places}d}"

"""Typed results of the wallet, park ticket and bank card flows.

Every result is a frozen dataclass with ``to_dict()`` (the JSON of the CLI
and the service): amounts as yuan text with two decimals plus ``*_fen``
integers, dates ``YYYY-MM-DD``, times ``YYYY-MM-DD HH:MM:SS`` (Beijing
time, as the card records it), codes and binary values as upper-case text.
A bank card number appears only masked.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Literal

from terminal.flows.amounts import format_fen

__all__ = [
    "BankCardInfo",
    "TicketPurchase",
    "TicketStatus",
    "WalletBalance",
    "WalletOperation",
    "WalletRecord",
    "WalletRecords",
    "WalletTransaction",
]

WalletOperation = Literal["load", "purchase"]


def _time(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _date(value: _dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class WalletBalance:
    """The wallet's balance and limit (fen) and its label."""

    balance: int
    limit: int
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "balance": format_fen(self.balance),
            "balance_fen": self.balance,
            "limit": format_fen(self.limit),
            "limit_fen": self.limit,
            "label": self.label,
        }


@dataclass(frozen=True, slots=True)
class WalletTransaction:
    """A completed load or purchase.

    ``counter``: the card's online (load) / offline (purchase) transaction
    counter the transaction used; ``tac``: the card's transaction
    authentication code (checked by the key source: ``tac_verified``);
    ``journal_entry``: the journal entry (None without a journal)."""

    operation: WalletOperation
    amount: int
    balance_before: int
    balance: int
    counter: int
    terminal: str
    time: _dt.datetime
    tac: bytes
    tac_verified: bool
    journal_entry: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "amount": format_fen(self.amount),
            "amount_fen": self.amount,
            "balance_before": format_fen(self.balance_before),
            "balance_before_fen": self.balance_before,
            "balance": format_fen(self.balance),
            "balance_fen": self.balance,
            "counter": self.counter,
            "terminal": self.terminal,
            "time": _time(self.time),
            "tac": self.tac.hex().upper(),
            "tac_verified": self.tac_verified,
            "journal_entry": self.journal_entry,
        }


@dataclass(frozen=True, slots=True)
class WalletRecord:
    """One record of the card's transaction file (``number`` 1 = newest).

    ``operation``: ``load``, ``purchase`` or ``other`` (a type this terminal
    does not know, ``type_code`` tells which); ``time`` None when the card's
    date and time are not a valid moment."""

    number: int
    operation: str
    type_code: str
    type_text: str
    counter: int
    amount: int
    terminal: str
    time: _dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "type": self.operation,
            "type_code": self.type_code,
            "type_text": self.type_text,
            "counter": self.counter,
            "amount": format_fen(self.amount),
            "amount_fen": self.amount,
            "terminal": self.terminal,
            "time": _time(self.time),
        }


@dataclass(frozen=True, slots=True)
class WalletRecords:
    """The balance and the transaction records, newest first."""

    balance: WalletBalance
    records: tuple[WalletRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.balance.to_dict(), "records": [r.to_dict() for r in self.records]}


@dataclass(frozen=True, slots=True)
class TicketStatus:
    """The park annual ticket as a park gate reads it.

    ``present`` False: no ticket on the card (the other fields None);
    ``valid``: valid on ``checked_on``."""

    present: bool
    checked_on: _dt.date
    year: int | None = None
    valid_from: _dt.date | None = None
    valid_until: _dt.date | None = None
    kind: str | None = None
    kind_text: str | None = None
    terminal: str | None = None
    sold_on: _dt.date | None = None

    @property
    def valid(self) -> bool:
        return (
            self.present
            and self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from <= self.checked_on <= self.valid_until
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "valid": self.valid,
            "checked_on": _date(self.checked_on),
            "year": self.year,
            "valid_from": _date(self.valid_from),
            "valid_until": _date(self.valid_until),
            "kind": self.kind,
            "kind_text": self.kind_text,
            "terminal": self.terminal,
            "sold_on": _date(self.sold_on),
        }


@dataclass(frozen=True, slots=True)
class TicketPurchase:
    """A park annual ticket written to the card (``replaced_year``: the year
    of the ticket it replaced, None when the card held none)."""

    year: int
    valid_from: _dt.date
    valid_until: _dt.date
    kind: str
    kind_text: str
    price: int
    terminal: str
    sold_on: _dt.date
    replaced_year: int | None
    journal_entry: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "valid_from": _date(self.valid_from),
            "valid_until": _date(self.valid_until),
            "kind": self.kind,
            "kind_text": self.kind_text,
            "price": format_fen(self.price),
            "price_fen": self.price,
            "terminal": self.terminal,
            "sold_on": _date(self.sold_on),
            "replaced_year": self.replaced_year,
            "journal_entry": self.journal_entry,
        }


@dataclass(frozen=True, slots=True)
class BankCardInfo:
    """The bank card number of the financial application, masked as counter
    systems show it (the full number is never kept).

    ``bank``: the partner bank's code when the number's IIN is one sscard
    knows, else None; ``expiry``: ``YYYY-MM``; ``source``: ``ppse`` or ``pse``."""

    pan_masked: str
    last4: str
    length: int
    aid: str
    label: str
    bank: str | None
    bank_name: str | None
    expiry: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "pan_masked": self.pan_masked,
            "last4": self.last4,
            "length": self.length,
            "aid": self.aid,
            "label": self.label,
            "bank": self.bank,
            "bank_name": self.bank_name,
            "expiry": self.expiry,
            "source": self.source,
        }

"""The park annual ticket (公园年票): one record of a public-service file.

The profile's ``[park_ticket]`` table names the record file (EF15 in the
social security application) and the record tag; the record is written
under secure messaging with the file's update key (the maintenance key) and
read without authentication at a park gate (docs/card-os.md §12,
docs/wallet.md).  The whole ticket is one fixed 21-byte record, so one
UPDATE RECORD writes it atomically:

====  ==========================  ======================
off   field                       encoding
====  ==========================  ======================
0     ticket year                 BCD, 2 bytes (``2026``)
2     valid from                  BCD date YYYYMMDD
6     valid until                 BCD date YYYYMMDD
10    ticket kind                 ASCII digit
11    selling terminal            BCD, 6 bytes
17    sold on                     BCD date YYYYMMDD
====  ==========================  ======================
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from card_model.errors import ProfileError

__all__ = ["TICKET_ELEMENT", "TICKET_LENGTH", "ParkTicket", "TicketSpec", "parse_park_ticket"]

TICKET_ELEMENT = "park_ticket"
TICKET_LENGTH = 21


@dataclass(frozen=True, slots=True)
class TicketSpec:
    """``[park_ticket]``: the file (name, FID, SFI) and the record tag."""

    file: str
    fid: int
    sfi: int
    tag: int


def _fail(reason: str, where: str) -> ProfileError:
    return ProfileError("profile", reason, where)


def parse_park_ticket(table: object, files: Mapping[str, Any]) -> TicketSpec:
    """Validate ``[park_ticket]`` against the profile's files (by name): a
    record file with an SFI, the tag declared as a 21-byte binary
    ``park_ticket`` record, updated under secure messaging."""
    if not isinstance(table, dict):
        raise _fail("not_a_table", "park_ticket")
    unknown = set(table) - {"file", "tag"}
    if unknown:
        raise _fail("unexpected", f"park_ticket: {', '.join(sorted(unknown))}")
    name = table.get("file")
    spec = files.get(name) if isinstance(name, str) else None
    if spec is None or spec.kind != "records" or spec.sfi is None:
        raise _fail("inconsistent", "park_ticket.file: a record file of the profile with an SFI")
    tag_text = table.get("tag")
    try:
        tag = int(tag_text, 16) if isinstance(tag_text, str) else -1
    except ValueError:
        raise _fail("not_hex", "park_ticket.tag") from None
    record = spec.record(tag)
    if record is None or record.element != TICKET_ELEMENT or record.length != TICKET_LENGTH:
        raise _fail("inconsistent", f"park_ticket.tag: a {TICKET_LENGTH}-byte {TICKET_ELEMENT} record")
    if record.encoding != "binary" or not spec.update.needs_sm:
        raise _fail("inconsistent", "park_ticket: binary record updated under secure messaging")
    return TicketSpec(str(name), spec.fid, spec.sfi, tag)


def _bcd(text: str) -> bytes:
    return bytes.fromhex(text)


def _bcd_text(raw: bytes) -> str:
    text = raw.hex()
    if not text.isdigit():
        raise ValueError("BCD digits expected")
    return text


def _date(raw: bytes) -> _dt.date:
    text = _bcd_text(raw)
    return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


@dataclass(frozen=True, slots=True)
class ParkTicket:
    """A park annual ticket as the card stores it."""

    year: int
    valid_from: _dt.date
    valid_until: _dt.date
    kind: str
    terminal: str
    sold_on: _dt.date

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 9999:
            raise ValueError("ticket year out of range")
        if len(self.kind) != 1 or not self.kind.isdigit():
            raise ValueError("the ticket kind is one digit")
        if len(self.terminal) != 12 or not (self.terminal.isascii() and self.terminal.isdigit()):
            raise ValueError("the terminal number is 12 digits")
        if self.valid_until < self.valid_from:
            raise ValueError("validity ends before it starts")

    def to_bytes(self) -> bytes:
        return (
            _bcd(f"{self.year:04d}")
            + _bcd(self.valid_from.strftime("%Y%m%d"))
            + _bcd(self.valid_until.strftime("%Y%m%d"))
            + self.kind.encode("ascii")
            + _bcd(self.terminal)
            + _bcd(self.sold_on.strftime("%Y%m%d"))
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ParkTicket:
        """Decode a stored ticket (``ValueError`` when it is not one)."""
        if len(raw) != TICKET_LENGTH:
            raise ValueError("a park ticket record is 21 bytes")
        try:
            kind = raw[10:11].decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("the ticket kind is one ASCII digit") from None
        return cls(
            year=int(_bcd_text(raw[0:2])),
            valid_from=_date(raw[2:6]),
            valid_until=_date(raw[6:10]),
            kind=kind,
            terminal=_bcd_text(raw[11:17]),
            sold_on=_date(raw[17:21]),
        )

    def valid_on(self, day: _dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until

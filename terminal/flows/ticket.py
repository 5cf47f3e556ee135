"""The park annual ticket (公园年票) flows: sell one, read it at a park gate.

The ticket is one record of a public-service file (profile
``[park_ticket]``: EF15 tag 01, :mod:`card_model.ticket`), written with
UPDATE RECORD under secure messaging with the file's update key (the
maintenance key) in one command, so a tear leaves either the old or the new
ticket.  Rules (``terminal/data/wallet.toml`` [ticket]): a ticket is sold
for the current year or up to ``sale_years_ahead`` years ahead, is valid for
that calendar year, and a second ticket for a year the card already holds
is refused (:class:`TicketAlreadyBought`, -1710).  The card keeps one
ticket, so a sale that would overwrite a ticket still valid on the day of
sale, or one of a later year, is refused too (:class:`TicketNotReplaceable`,
-1712): next year's ticket is sold once this year's has expired, or in
advance to a card without a valid one.  The sale is journaled
(``ticket.buy``) with a 2-byte check of the written record, which
:func:`terminal.flows.resolve_torn` compares after a tear.
"""

from __future__ import annotations

import datetime as _dt
from functools import cache
from typing import Any, NoReturn

from apdu.command import CommandApdu
from apdu.errors import ConditionsNotSatisfied, RecordNotFound
from apdu.tlv import encode_record, parse_records
from card_model.keys import KeyRole, role_for_kid
from card_model.ticket import ParkTicket, TicketSpec
from terminal._data import load_data
from terminal.flows._common import journal_scope
from terminal.flows.generic import record_check
from terminal.flows.purse_commands import terminal_bytes, transaction_moment
from terminal.flows.wallet_errors import (
    InvalidTicketKind,
    InvalidTicketYear,
    TicketAlreadyBought,
    TicketNotAvailable,
    TicketNotReplaceable,
    TicketUnreadable,
    WalletInactive,
)
from terminal.flows.wallet_results import TicketPurchase, TicketStatus
from terminal.journal_hook import DetailValue
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = ["buy_ticket", "read_ticket", "stored_ticket", "ticket_spec", "today"]

RECORD_ONE = 0x04
LE_ALL = 256


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("wallet")["ticket"]
    return table


def today(now: _dt.datetime | None = None) -> _dt.date:
    """Today in Beijing."""
    return transaction_moment(now)[0].date()


def ticket_spec(session: CardSession) -> TicketSpec:
    spec = session.profile.applications.park_ticket
    if spec is None:
        raise TicketNotAvailable(f"the {session.profile.name} profile has no park ticket record")
    return spec


def _kind_text(kind: str) -> str:
    row = _settings()["kinds"].get(kind)
    return f"{row['zh']} {row['en']}" if row else kind


def stored_ticket(session: CardSession, spec: TicketSpec) -> bytes | None:
    try:
        raw = session.send(CommandApdu(0x00, 0xB2, spec.tag, (spec.sfi << 3) | RECORD_ONE, le=LE_ALL)).data
    except RecordNotFound:
        return None
    records = parse_records(raw)
    if len(records) != 1 or records[0][0] != spec.tag:
        raise TicketUnreadable("READ RECORD answered another record")
    return records[0][1]


def _decode(raw: bytes | None) -> ParkTicket | None:
    if raw is None or not any(raw):
        return None
    try:
        return ParkTicket.from_bytes(raw)
    except ValueError as exc:
        raise TicketUnreadable(str(exc)) from None


def read_ticket(session: CardSession, *, on: _dt.date | None = None) -> TicketStatus:
    """The ticket on the card and whether it is valid ``on`` (default: today)."""
    spec = ticket_spec(session)
    day = on if on is not None else today()
    with session.transaction(), journal_scope(session, "ticket.show") as scope:
        ticket = _decode(stored_ticket(session, spec))
        if ticket is None:
            scope.add(present=False)
            return TicketStatus(False, day)
        status = TicketStatus(
            True,
            day,
            ticket.year,
            ticket.valid_from,
            ticket.valid_until,
            ticket.kind,
            _kind_text(ticket.kind),
            ticket.terminal,
            ticket.sold_on,
        )
        scope.add(present=True, year=ticket.year, valid=status.valid)
        return status


def buy_ticket(
    session: CardSession,
    year: int | None = None,
    *,
    kind: str | None = None,
    key_source: KeySource | None = None,
    now: _dt.datetime | None = None,
) -> TicketPurchase:
    """Write a park annual ticket for ``year`` (default: this year)."""
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise InvalidTicketYear("the year is a whole number")
    spec = ticket_spec(session)
    sold_on = today(now)
    chosen_year = sold_on.year if year is None else year
    chosen_kind = str(_settings()["default_kind"]) if kind is None else kind
    row = _settings()["kinds"].get(chosen_kind)
    file_spec = session.profile.file(spec.fid)
    record_spec = None if file_spec is None else file_spec.record(spec.tag)
    if file_spec is None or record_spec is None or file_spec.update.kid is None:
        raise TicketNotAvailable("the park ticket record is not writable")
    role = role_for_kid(file_spec.update.kid) or KeyRole.AMK
    terminal = terminal_bytes(session).hex()
    details: dict[str, DetailValue] = {"year": chosen_year, "kind": chosen_kind, "terminal": terminal}
    with session.transaction():
        current = _decode(stored_ticket(session, spec))
        details["previous_year"] = current.year if current is not None else 0
        if not sold_on.year <= chosen_year <= sold_on.year + int(_settings()["sale_years_ahead"]):
            _refuse(
                session, details, InvalidTicketYear(f"year {chosen_year}", message_zh=f"{chosen_year} 年")
            )
        if row is None:
            _refuse(session, details, InvalidTicketKind(f"kind {chosen_kind!r}"))
        if current is not None and current.year == chosen_year:
            _refuse(
                session, details, TicketAlreadyBought(f"year {chosen_year}", message_zh=f"{chosen_year} 年")
            )
        if current is not None and (
            current.year > chosen_year or current.valid_from <= sold_on <= current.valid_until
        ):
            # the card keeps one ticket: never overwrite one still valid or of a later year
            _refuse(
                session,
                details,
                TicketNotReplaceable(
                    f"the card holds the {current.year} ticket, valid until {current.valid_until}",
                    message_zh=f"卡内为 {current.year} 年度年票，有效期至 {current.valid_until}",
                ),
            )
        ticket = ParkTicket(
            year=chosen_year,
            valid_from=_dt.date(chosen_year, 1, 1),
            valid_until=_dt.date(chosen_year, 12, 31),
            kind=chosen_kind,
            terminal=terminal,
            sold_on=sold_on,
        )
        value = ticket.to_bytes()
        details[f"check_{spec.tag:02X}"] = record_check(session.card_id, spec.tag, value)
        with journal_scope(session, "ticket.buy", details) as scope:
            command = session.prepare_secure(
                CommandApdu(
                    0x00, 0xDC, spec.tag, (spec.sfi << 3) | RECORD_ONE, encode_record(spec.tag, value)
                ),
                role,
                key_source,
            )
            with scope.write(f"UPDATE RECORD {spec.file}"):
                try:
                    session.send(command, context="key")
                except ConditionsNotSatisfied as exc:
                    raise WalletInactive(sw=exc.sw or 0x6985) from exc
            scope.add(valid_from=ticket.valid_from.isoformat(), valid_until=ticket.valid_until.isoformat())
            return TicketPurchase(
                ticket.year,
                ticket.valid_from,
                ticket.valid_until,
                ticket.kind,
                _kind_text(ticket.kind),
                int(row["price_fen"]) if row is not None else 0,
                ticket.terminal,
                ticket.sold_on,
                current.year if current is not None else None,
                scope.entry_id,
            )


def _refuse(session: CardSession, details: dict[str, DetailValue], error: Exception) -> NoReturn:
    with journal_scope(session, "ticket.buy", details):
        raise error

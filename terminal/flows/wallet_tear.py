"""Tear resolution of the wallet and park ticket operations (docs/wallet.md).

:func:`terminal.flows.resolve_torn` hands every incomplete entry whose
operation is in :data:`WALLET_OPERATIONS` to :func:`wallet_verdict`, which
reads the card and decides from what the entry's ``begin`` recorded:

``wallet.load`` / ``wallet.purchase`` (type, counter, amount, terminal,
date, time, balance before, sequence):

* *applied* when the card's transaction file holds the record of exactly
  this transaction (type, counter, amount, terminal, date, time), or when
  GET TRANSACTION PROVE for the counter gives a TAC that the key source
  verifies over this transaction's data (the record may have rotated out);
  the TAC is verified when a key source is there;
* *not applied* when the counter was used by another transaction of the
  same type, or the file reaches back before this transaction (it holds an
  older record of the type, or is not full) without holding its record;
* otherwise *undetermined* (a person resolves it with the card's records).

``ticket.buy``: *applied* when the ticket record matches the journaled
2-byte check, else *not applied* (one UPDATE RECORD: there is no partial
ticket).  Reads (``wallet.balance``, ``wallet.records``, ``ticket.show``,
``bankcard.read``) are interrupted reads.  The note says what the card
showed (balance, counter, TAC); it becomes the journal's resolution note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from apdu.errors import KeySourceError, SscardError, TransportError
from card_model.purse import TYPE_LOAD, TransactionRecord, load_tac_data, purchase_tac_data
from terminal.flows.amounts import format_fen
from terminal.flows.generic import record_check
from terminal.flows.purse_commands import (
    decode_records,
    get_balance,
    purse_spec,
    read_log,
    selected_purse,
    transaction_prove,
)
from terminal.flows.results import TornOutcome
from terminal.flows.ticket import stored_ticket, ticket_spec
from terminal.journal_hook import IncompleteEntry
from terminal.keysource.base import KeySource
from terminal.keysource.purse import PurseKeys, purse_keys
from terminal.session import CardSession

__all__ = ["WALLET_OPERATIONS", "WALLET_READS", "wallet_verdict"]

WALLET_READS = frozenset({"wallet.balance", "wallet.records", "ticket.show", "bankcard.read"})
WALLET_OPERATIONS = WALLET_READS | {"wallet.load", "wallet.purchase", "ticket.buy"}

Verdict = tuple[TornOutcome, str]


def _int(details: Mapping[str, str], key: str) -> int | None:
    value = details.get(key)
    return int(value) if value is not None and value.isdigit() else None


def _hex(details: Mapping[str, str], key: str, length: int) -> bytes | None:
    value = details.get(key, "")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == length else None


def _keys(session: CardSession, key_source: KeySource | None) -> PurseKeys | None:
    source = key_source if key_source is not None else session.key_source
    if source is None:
        return None
    try:
        return purse_keys(source)
    except KeySourceError:
        return None


def _tac_verified(
    session: CardSession,
    keys: PurseKeys | None,
    details: Mapping[str, str],
    tx: TransactionRecord,
    tac: bytes,
) -> bool | None:
    """Whether ``tac`` is this transaction's TAC (None without a key source)."""
    if keys is None:
        return None
    before = _int(details, "balance_before")
    if tx.tx_type == TYPE_LOAD:
        if before is None:
            return None
        data = load_tac_data(
            before + tx.amount, tx.counter, tx.amount, tx.tx_type, tx.terminal, tx.date, tx.time
        )
    else:
        sequence = _hex(details, "sequence", 4)
        if sequence is None:
            return None
        data = purchase_tac_data(tx.amount, tx.tx_type, tx.terminal, sequence, tx.date, tx.time)
    try:
        return keys.check_tac(session.algorithm, session.info.factor, data, tac)
    except SscardError:
        return None


def _tac_note(verified: bool | None) -> str:
    if verified is None:
        return "TAC not checked (no key source)"
    return "TAC verified" if verified else "TAC does NOT verify"


def _money(session: CardSession, entry: IncompleteEntry, key_source: KeySource | None) -> Verdict:
    details = entry.details
    tx_type, counter, amount = _hex(details, "type", 1), _int(details, "counter"), _int(details, "amount")
    terminal, date, time = _hex(details, "terminal", 6), _hex(details, "date", 4), _hex(details, "time", 3)
    if (
        tx_type is None
        or counter is None
        or amount is None
        or terminal is None
        or date is None
        or time is None
    ):
        return "undetermined", "the entry does not say which transaction it was"
    ours = TransactionRecord(counter, amount, tx_type[0], terminal, date, time)
    spec = purse_spec(session)
    keys = _keys(session, key_source)
    with selected_purse(session, spec):
        balance = get_balance(session, spec).balance
        raw = read_log(session, spec)
        records = decode_records(raw)
        proof = transaction_prove(session, ours.tx_type, counter)
    before = _int(details, "balance_before")
    state = f"balance now {format_fen(balance)}" + (
        f" (before {format_fen(before)})" if before is not None else ""
    )
    what = f"{entry.operation.removeprefix('wallet.')} of {format_fen(amount)} with counter {counter}"
    if ours in records:
        verified = None if proof is None else _tac_verified(session, keys, details, ours, proof[1])
        proof_note = _tac_note(verified) if proof is not None else "proof superseded by a later transaction"
        return "applied", f"the card holds the record of the {what}; {state}; {proof_note}"
    if proof is not None and _tac_verified(session, keys, details, ours, proof[1]):
        return "applied", f"GET TRANSACTION PROVE shows the {what} (TAC verified); {state}"
    same_type = [r for r in records if r.tx_type == ours.tx_type]
    if any(r.counter == counter for r in same_type):
        return (
            "not_applied",
            f"counter {counter} was used by another transaction; the {what} did not happen; {state}",
        )
    if any(r.counter < counter for r in same_type) or len(raw) < spec.log_records:
        return "not_applied", f"the card's records reach back before the {what} and do not hold it; {state}"
    return "undetermined", f"the card's records no longer reach back to the {what}; {state}"


def _ticket(session: CardSession, entry: IncompleteEntry) -> Verdict:
    spec = ticket_spec(session)
    check = entry.details.get(f"check_{spec.tag:02X}")
    if check is None:
        return "undetermined", "the entry holds no record check"
    stored = stored_ticket(session, spec)
    year = entry.details.get("year", "?")
    if stored is not None and record_check(session.card_id, spec.tag, stored) == check:
        return "applied", f"the card holds the {year} park ticket that was written"
    return "not_applied", f"the card does not hold the {year} park ticket that was written"


def wallet_verdict(session: CardSession, entry: IncompleteEntry, key_source: KeySource | None) -> Verdict:
    """The outcome of one incomplete wallet / ticket entry (see the module docstring)."""
    if entry.operation in WALLET_READS:
        return "interrupted_read", "a read was interrupted; the card was not changed by it"
    try:
        if entry.operation == "ticket.buy":
            return _ticket(session, entry)
        return _money(session, entry, key_source)
    except TransportError:
        raise
    except SscardError as exc:
        with contextlib.suppress(SscardError):
            session.select_application(check=False)
        return "undetermined", f"the card could not be read ({exc.error_id})"

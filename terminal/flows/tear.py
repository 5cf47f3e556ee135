"""Resolving journal entries a torn or crashed flow left incomplete.

A write flow records, in its ``begin`` details, the card state it started
from (life cycle, PIN tries and "initial" flag; for record writes a 2-byte
check of each value).  When the card vanished mid-write the entry is torn
(or, if the terminal itself died, still open).  :func:`resolve_torn` reads
the card's state now (GET DATA DF01 / DF02, records) and closes each such
entry of this card:

==================  ==========================================================
outcome             meaning
==================  ==========================================================
``applied``         the card shows the operation's target state (result ok)
``not_applied``     the card shows the state before it (result failed)
``interrupted_read`` a read / query / verify: nothing to undo (result failed)
``undetermined``    the card cannot tell (e.g. a chosen PIN over a full try
                    counter): the entry stays open for a person to resolve
==================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu.errors import KeySourceError, SecurityStatusNotSatisfied
from apdu.tlv import parse_records
from card_model.lifecycle import LifeCycle
from terminal.flows._common import authenticate_for, pin_status_now
from terminal.flows.generic import record_check
from terminal.flows.results import PinStatus, TornEntryOutcome, TornOutcome, TornResolution
from terminal.journal_hook import IncompleteEntry, JournalHook, JournalResult
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = ["resolve_torn"]

READ_OPERATIONS = frozenset(
    {
        "card.read_basic",
        "card.read_holder",
        "card.read",
        "card.status",
        "card.authenticate",
        "pin.status",
        "pin.verify",
        "card.present",
    }
)
_BLOCK_TARGET = {"temporary": LifeCycle.TEMPORARILY_BLOCKED, "permanent": LifeCycle.PERMANENTLY_BLOCKED}

Verdict = tuple[TornOutcome, str]


def _int(details: Mapping[str, str], key: str) -> int | None:
    value = details.get(key)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _flag(details: Mapping[str, str], key: str) -> bool | None:
    value = details.get(key)
    return None if value is None else value == "true"


def _life_cycle(details: Mapping[str, str]) -> LifeCycle | None:
    label = details.get("life_cycle_before")
    try:
        return None if label is None else LifeCycle.from_label(label)
    except KeyError:
        return None


def _pin_change(details: Mapping[str, str], now: PinStatus) -> Verdict:
    initial_before = _flag(details, "initial_before")
    tries_before = _int(details, "tries_before")
    if tries_before is not None and now.retries_left < tries_before:
        return (
            "not_applied",
            f"the try counter fell from {tries_before} to {now.retries_left}: old PIN refused",
        )
    if initial_before and not now.initial:
        return "applied", "the initial flag is cleared"
    if initial_before and now.initial:
        return "not_applied", "the initial PIN is still set"
    if tries_before is not None and tries_before < now.max_tries and now.retries_left == now.max_tries:
        return "applied", "the try counter was restored"
    return "undetermined", "the card state is the same before and after a change"


def _pin_reset(details: Mapping[str, str], now: PinStatus) -> Verdict:
    to_initial = details.get("target") == "initial"
    full = now.retries_left == now.max_tries
    if to_initial:
        if now.initial and full:
            return "applied", "the initial PIN is set and the tries are full"
        return "not_applied", "the card does not show the initial PIN with full tries"
    if now.initial or not full:
        return "not_applied", "the card does not show a reloaded PIN"
    tries_before = _int(details, "tries_before")
    if _flag(details, "initial_before") or (tries_before is not None and tries_before < now.max_tries):
        return "applied", "the PIN was reloaded (flag / try counter changed)"
    return "undetermined", "a chosen PIN over a full try counter leaves no trace"


def _pin_unblock(details: Mapping[str, str], now: PinStatus) -> Verdict:
    if now.retries_left == now.max_tries:
        return "applied", "the try counter is full"
    return "not_applied", f"the try counter is {now.retries_left}"


def _life_cycle_verdict(operation: str, details: Mapping[str, str], now: LifeCycle) -> Verdict:
    before = _life_cycle(details)
    if operation == "card.activate":
        target: LifeCycle | None = LifeCycle.ACTIVE
    elif operation == "card.block":
        target = _BLOCK_TARGET.get(details.get("mode", ""))
    else:
        target = None
    if target is not None and now is target:
        return "applied", f"the card is {now.label}"
    if (
        operation == "card.unblock"
        and before is LifeCycle.TEMPORARILY_BLOCKED
        and now
        in (
            LifeCycle.PERSONALISED,
            LifeCycle.ACTIVE,
        )
    ):
        return "applied", f"the card is {now.label} again"
    if before is not None and now is before:
        return "not_applied", f"the card is still {now.label}"
    return "undetermined", f"the card is {now.label}"


def _record_write(session: CardSession, details: Mapping[str, str], key_source: KeySource | None) -> Verdict:
    checks = {int(k[6:], 16): v for k, v in details.items() if k.startswith("check_")}
    name = details.get("file", "")
    spec = session.profile.file_named(name)
    if not checks or spec is None:
        return "undetermined", "the entry holds no record checks"
    try:
        authenticate_for(session, spec, key_source)
        found = dict(parse_records(session.read_all_raw(spec.sfi or 0)))
    except (KeySourceError, SecurityStatusNotSatisfied) as exc:
        return "undetermined", f"the records cannot be read ({exc.error_id})"
    matching = [
        t for t, check in checks.items() if t in found and record_check(session.card_id, t, found[t]) == check
    ]
    if len(matching) == len(checks):
        return "applied", "every record holds the written value"
    if not matching:
        return "not_applied", "no record holds the written value"
    return "undetermined", f"records {', '.join(f'{t:02X}' for t in sorted(matching))} written, others not"


def _verdict(
    session: CardSession,
    entry: IncompleteEntry,
    pin: PinStatus,
    life_cycle: LifeCycle,
    key_source: KeySource | None,
) -> Verdict:
    operation, details = entry.operation, entry.details
    if operation in READ_OPERATIONS:
        return "interrupted_read", "a read or check was interrupted; the card was not changed by it"
    if operation == "pin.change":
        return _pin_change(details, pin)
    if operation == "pin.reset":
        return _pin_reset(details, pin)
    if operation == "pin.unblock":
        return _pin_unblock(details, pin)
    if operation in ("card.activate", "card.block", "card.unblock"):
        return _life_cycle_verdict(operation, details, life_cycle)
    if operation == "card.write":
        return _record_write(session, details, key_source)
    from terminal.flows.wallet_tear import WALLET_OPERATIONS, wallet_verdict

    if operation in WALLET_OPERATIONS:
        return wallet_verdict(session, entry, key_source)
    from terminal.issuance.tear import ISSUANCE_OPERATIONS, issuance_verdict

    if operation in ISSUANCE_OPERATIONS:
        return issuance_verdict(session, entry, key_source)
    return "undetermined", f"no rule for {operation}"


def resolve_torn(
    session: CardSession, journal: JournalHook | None = None, *, key_source: KeySource | None = None
) -> TornResolution:
    """Inspect the card and resolve this card's incomplete journal entries
    (``journal`` defaults to the session's hook).  Spends no PIN try; record
    writes are checked only when the records can be read (key source)."""
    hook = journal if journal is not None else session.journal
    entries = hook.incomplete(session.card_id)
    if not entries:
        return TornResolution(())
    outcomes = []
    with session.transaction():
        pin = pin_status_now(session)
        life_cycle = session.life_cycle()
        for entry in entries:
            outcome, note = _verdict(session, entry, pin, life_cycle, key_source)
            resolved = outcome != "undetermined"
            result: JournalResult | None = None
            if resolved:
                result = "ok" if outcome == "applied" else "failed"
                hook.resolve(entry.entry_id, resolution=f"card_state_{outcome}", result=result, note=note)
            outcomes.append(
                TornEntryOutcome(entry.entry_id, entry.operation, outcome, result, note, resolved)
            )
    return TornResolution(tuple(outcomes))

"""Tearing campaign, the personalisation flows beside instant issuance: the
national ``iWriteCA`` (terminal/flows/write_ca.py) and the replacement
issuance (``replace_card``).  A blank card cannot be opened by an ordinary
session (its EF05 card facts are missing), so these flows and their next
sessions run on in-process readers without the presentation gate, as the
issuance area's sweep does (tests/issuance/issuance_tear_cases.py, whose
orders, stock cards and checks are reused here).

What is shared: :func:`blank_session` (a reader with the card, not
connected), :func:`record` (a clean run with the card's persistent state
after every APDU, rel_tear.Recorder) and :func:`torn_copy` (a copy of a
card behind the emulator's fault plan, pulled as an in-process reader sees it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rel_tear import Recorded, TearKind, copy_card, session_on
from rel_tear import record as record_run

from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard, InProcessTear
from emulator.vpcd import VirtualCard
from terminal.journal_hook import JournalHook, MemoryEntry, MemoryJournal
from terminal.keysource.base import KeySource
from terminal.session import CardSession

ISSUANCE_TESTS = Path(__file__).resolve().parents[1] / "issuance"
if str(ISSUANCE_TESTS) not in sys.path:
    sys.path.insert(0, str(ISSUANCE_TESTS))

# the issuance area's helpers, reused (re-exported for the tests of this area)
from issuance_helpers import (  # noqa: E402
    ACTOR,
    StockCard,
    check_finished_card,
    order_for,
)
from issuance_tear_cases import PIN, SSN  # noqa: E402

__all__ = [
    "ACTOR",
    "PIN",
    "SSN",
    "Recorded",
    "StockCard",
    "TornCopy",
    "blank_session",
    "check_finished_card",
    "entry",
    "order_for",
    "record",
    "torn_copy",
]

Run = Callable[[CardSession], object]


def blank_session(card: VirtualCard, key_source: KeySource, journal: JournalHook) -> CardSession:
    """A new in-process reader holding ``card``, not connected (a blank card cannot be)."""
    return session_on(card, key_source, journal, connect=False)[0]


def record(template: CardOS, key_source: KeySource, run: Run) -> Recorded:
    """``run`` on a copy of the blank ``template``, recording every APDU's INS and boundary state."""
    return record_run(template, key_source, run, connect=False)


@dataclass
class TornCopy:
    """A fresh copy of a card behind the fault plan, armed to tear once."""

    card: CardOS
    plan: FaultPlan
    wrapper: InProcessTear

    def session(self, key_source: KeySource, journal: JournalHook) -> CardSession:
        return blank_session(self.wrapper, key_source, journal)

    def fired_at(self, kind: TearKind, index: int) -> bool:
        fired = self.plan.fired
        return len(fired) == 1 and fired[0].kind == kind and fired[0].apdu_index == index


def torn_copy(template: CardOS, kind: TearKind, index: int, *, ins: int | None = None) -> TornCopy:
    """A copy of ``template`` that is pulled at its ``index``-th APDU from now
    (of INS ``ins`` when given), before or after the card executes it (``kind``)."""
    card = copy_card(template)
    plan = FaultPlan()
    wrapper = InProcessTear(FaultyCard(card, plan))
    plan.arm(Fault.of(kind, nth=index) if ins is None else Fault.of(kind, nth=index, ins=ins))
    return TornCopy(card, plan, wrapper)


def entry(journal: MemoryJournal, entry_id: int | None) -> MemoryEntry:
    """The entry ``entry_id`` of ``journal`` as it is now."""
    (found,) = [e for e in journal.entries if e.entry_id == entry_id]
    return found

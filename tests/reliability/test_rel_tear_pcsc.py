"""Tearing campaign through the real PC/SC stack: pcscd + vpcd, the demo PSAM
as key source in its own reader, the registry journal (SQLite).  A
representative subset of the in-process sweep: for every generation-3
writing flow, a tear before and after each APDU that changes the card
(the points where old and new state meet), plus the first and the last APDU
of the money flows.  The same checks (rel_tear.tear_case); here the pulled
card is really gone from the reader and comes back as a new PC/SC card.

vpcd slots of this part (tests/conftest.py, reliability 8-11): 10 the card,
11 the PSAM.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from psam_slot import demo_psam_source
from rel_tear import KINDS, CleanRun, TearKind, anchors, clean_run, psam_source, tear_case
from rel_tear_flows import tear_flows

from apdu.errors import SscardError
from emulator.presence import wait_for_card
from emulator.stack import PcscStack
from emulator.vpcd import VirtualCard, VpcdLink
from terminal.journal_hook import JournalHook, RegistryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.presentation import PresentationGate
from terminal.registry import open_registry
from terminal.session import CardSession

CARD_SLOT = 10
PSAM_SLOT = 11
MONEY_FLOWS = ("wallet.load", "wallet.purchase")


class PcscBench:
    """Tear cases through pcscd: the card in a vpcd slot, sessions over PC/SC."""

    def __init__(self, slot: int, reader: str, key_source: KeySource) -> None:
        self.slot = slot
        self.reader = reader
        self.key_source = key_source
        self.card: VirtualCard | None = None
        self.link: VpcdLink | None = None
        self.sessions: list[CardSession] = []

    def _insert(self) -> None:
        assert self.card is not None
        wait_for_card(self.reader, False)
        self.link = VpcdLink(self.card, self.slot)
        self.link.insert()
        wait_for_card(self.reader, True)

    def _open(self, hook: JournalHook, gate: PresentationGate | None) -> CardSession:
        session = CardSession.open(
            self.reader, key_source=self.key_source, journal=hook, trust_anchors=anchors(), gate=gate
        )
        self.sessions.append(session)
        return session

    def present(self, card: VirtualCard, hook: JournalHook) -> CardSession:
        self.card = card
        self._insert()
        return self._open(hook, None)

    def represent(self, hook: JournalHook, gate: PresentationGate) -> CardSession:
        # the tear closed the vpcd connection (pulling it again is harmless when no tear
        # did): pcscd sees the card go, then the new insertion
        assert self.link is not None
        self.link.remove()
        self._insert()
        return self._open(hook, gate)

    def done(self) -> None:
        for session in self.sessions:
            try:
                session.close()
            except SscardError:
                continue
        self.sessions.clear()
        if self.link is not None:
            self.link.remove()
            self.link = None
        wait_for_card(self.reader, False)


def _points(run: CleanRun) -> list[tuple[TearKind, int]]:
    changing = [i for i in range(1, run.apdus + 1) if run.boundaries[i] != run.boundaries[i - 1]]
    indexes = set(changing)
    if run.flow.name in MONEY_FLOWS:
        indexes |= {1, run.apdus}
    return [(kind, index) for index in sorted(indexes) for kind in KINDS]


@pytest.fixture(scope="module")
def pcsc_psam(pcsc_stack: PcscStack) -> Iterator[PsamKeySource]:
    with demo_psam_source(pcsc_stack, PSAM_SLOT) as source:
        yield source


@pytest.fixture(scope="module")
def runs() -> dict[str, CleanRun]:
    key_source = psam_source()
    return {flow.name: clean_run(flow, key_source) for flow in tear_flows(3)}


@pytest.mark.parametrize("name", [flow.name for flow in tear_flows(3)])
def test_tear_through_pcsc(
    name: str,
    runs: dict[str, CleanRun],
    pcsc_stack: PcscStack,
    pcsc_psam: PsamKeySource,
    tmp_path: Path,
    tear_points: Counter[str],
) -> None:
    run = runs[name]
    registry, journal = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    hook = RegistryJournal(journal, terminal="BJ-REL-PCSC", operator="op-rel-11")
    bench = PcscBench(CARD_SLOT, pcsc_stack.reader_for_slot(CARD_SLOT), pcsc_psam)
    try:
        points = _points(run)
        outcomes = [tear_case(run, kind, index, bench, journal=hook) for kind, index in points]
    finally:
        registry.close()
    assert {o.card for o in outcomes} >= {"old", "new"}
    assert not journal.incomplete(), "the registry journal keeps an incomplete entry"
    torn = [e for e in journal.query() if e.torn_at is not None]
    assert torn and all(e.state == "resolved" for e in torn)
    tear_points[f"gen3 {name} (PC/SC)"] += len(outcomes)

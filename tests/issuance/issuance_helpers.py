"""Helpers of the issuance tests: blank stock cards, orders, in-process
sessions with the emulator's fault plan, and the checks of a finished card."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_ca, demo_holder, demo_psam_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard, InProcessTear
from emulator.psam import PsamCard
from terminal import flows
from terminal.issuance import IssuanceOrder
from terminal.journal_hook import JournalHook, MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.registry import Actor
from terminal.session import CardSession

ACTOR = Actor(operator="op-007", terminal="BJ-ISSUE-01")
READER = "In-process card"


def order_for(holder: str = "gen3", **card: str) -> IssuanceOrder:
    """The demo holder's order (card facts of the demo card unless overridden)."""
    person, data = demo_holder(holder)
    facts = {k: v for k, v in data.to_mapping().items() if k != "serial"}
    facts.update(card)
    return IssuanceOrder.from_mapping(person.to_mapping(), facts)


def psam_source() -> PsamKeySource:
    return PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="In-process PSAM"))


def anchors() -> list[Any]:
    return [demo_ca().certificate]


@dataclass
class StockCard:
    """A blank stock card with a fault plan, insertable into fresh in-process readers."""

    number: int = 1
    generation: int = 3
    plan: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        self.os = CardOS(demo_stock_card_image(self.number, generation=self.generation))
        self.faulty = FaultyCard(self.os, self.plan)
        self.wrapper = InProcessTear(self.faulty)

    def arm(self, kind: str, nth: int, ins: int | None = None) -> None:
        """Tear at the ``nth`` APDU from now (of INS ``ins`` when given)."""
        if ins is None:
            self.plan.arm(Fault.of(kind, nth=nth))
        else:
            self.plan.arm(Fault.of(kind, nth=nth, ins=ins))

    def session(
        self, *, key_source: KeySource | None = None, journal: JournalHook | None = None
    ) -> CardSession:
        """A new reader with the card inserted, not yet connected (a blank card cannot be)."""
        transport = InProcessTransport(reader=READER, protocol="T0")
        transport.insert(self.wrapper)
        self.wrapper.transport = transport
        return CardSession(
            transport,
            key_source=key_source if key_source is not None else psam_source(),
            journal=journal if journal is not None else MemoryJournal(),
            trust_anchors=anchors(),
        )


def check_finished_card(session: CardSession, ssn: str, pin: str) -> None:
    """Every read, authenticity and PIN flow works on the card in ``session``."""
    if not session.connected:
        session.connect()
    basic = flows.read_basic(session)
    assert basic.generation == session.generation
    holder = flows.read_holder(session)
    assert holder.ssn == ssn
    assert flows.read_card_bas(session).split("|")[1] == ssn
    result = flows.authenticate_card(session)
    assert result.to_dict()["genuine"] is True and result.symmetric and result.sm2 is not False
    assert flows.pin_status(session).state == "initial"
    assert flows.verify_pin(session, pin).to_dict()["ok"] is True
    assert session.life_cycle() in (LifeCycle.PERSONALISED, LifeCycle.ACTIVE)

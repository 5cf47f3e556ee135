"""Issuance end to end over pcscd + vpcd: the blank card in slot 0, the PSAM in
slot 1 (PsamKeySource over PC/SC), the old card of a replacement in slot 2;
the registry journal; a sample of tears (the emulator's fault plan closes the
vpcd link), each followed by a new session that resumes the issuance."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from issuance_helpers import ACTOR, anchors, check_finished_card, order_for
from issuance_pcsc import CARD_SLOT, OLD_CARD_SLOT

from apdu.errors import CardRemovedError
from apdu.pcsc import PcscTransport
from card_model.demo import demo_card_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal import flows
from terminal.flows.issuance import inspect_card, issue_card, replace_card
from terminal.journal_hook import JournalHook, MemoryJournal, RegistryJournal
from terminal.keysource import PsamKeySource
from terminal.presentation import PresentationGate
from terminal.registry import Journal, Registry
from terminal.registry.errors import CardRefused
from terminal.session import CardSession

SSN = "110102197305211008"
PIN = "211008"
Insert = Callable[..., AbstractContextManager[VpcdLink]]
Opened = tuple[Registry, Journal]


def _session(reader: str, psam: PsamKeySource, journal: JournalHook, **options: object) -> CardSession:
    return CardSession(
        PcscTransport(reader, dispose="reset"),
        key_source=psam,
        journal=journal,
        trust_anchors=anchors(),
        **options,  # type: ignore[arg-type]
    )


def test_full_issuance_over_pcsc(
    pcsc_stack: PcscStack, insert: Insert, psam_in_slot: PsamKeySource, registry: Opened
) -> None:
    reg, journal = registry
    reader = pcsc_stack.reader_for_slot(CARD_SLOT)
    hook = RegistryJournal(journal, terminal=ACTOR.terminal, operator=ACTOR.operator)
    card = CardOS(demo_stock_card_image(31))
    with insert(card):
        session = _session(reader, psam_in_slot, hook)
        started = time.perf_counter()
        result = issue_card(session, order_for(), registry=reg, actor=ACTOR)
        elapsed = time.perf_counter() - started
        assert result.life_cycle is LifeCycle.PERSONALISED and result.registry_status == "issued"
        assert 0 < result.seconds <= elapsed
        check_finished_card(session, SSN, PIN)
        session.close()
        again = CardSession.open(reader, key_source=psam_in_slot, journal=hook, trust_anchors=anchors())
        check_finished_card(again, SSN, PIN)
        assert flows.read_card_bas(again).split("|")[9] == "110102000001"
        again.close()
    assert journal.incomplete(result.card_id) == []
    entry = journal.query(card_id=result.card_id, operation="card.issue")[0]
    assert entry.state == "completed" and entry.result == "ok"


def test_replacement_over_pcsc_and_the_old_card_refused(
    pcsc_stack: PcscStack, insert: Insert, psam_in_slot: PsamKeySource, registry: Opened
) -> None:
    reg, journal = registry
    old_card = CardOS(demo_card_image())
    old_id = old_card.image.card_id.hex().upper()
    reg.register_holder(SSN, "张三", gender="1", birth_date="1973-05-21")
    reg.register_card(old_id, "X00000019", SSN, 3, "Bank of Beijing", "2025-03-01", "2035-02-28", "active")
    reg.report_loss_formal(old_id, ACTOR)
    hook = RegistryJournal(journal, terminal=ACTOR.terminal, operator=ACTOR.operator)
    order = order_for(card_number="X00000051", issue_date="2025-06-01", expiry_date="2035-05-31")
    with insert(CardOS(demo_stock_card_image(32))):
        session = _session(pcsc_stack.reader_for_slot(CARD_SLOT), psam_in_slot, hook)
        result = replace_card(session, order, old_id, registry=reg, actor=ACTOR, activate=True)
        assert result.life_cycle is LifeCycle.ACTIVE and reg.card(old_id).status == "replaced"
        check_finished_card(session, SSN, PIN)
        session.close()
    with insert(old_card, slot=OLD_CARD_SLOT):
        gate = PresentationGate(reg, actor=ACTOR)
        presented = _session(pcsc_stack.reader_for_slot(OLD_CARD_SLOT), psam_in_slot, hook, gate=gate)
        presented.connect()
        assert presented.presentation is not None and presented.presentation.blocked
        with pytest.raises(CardRefused):
            flows.verify_pin(presented, PIN)
        assert presented.life_cycle() is LifeCycle.PERMANENTLY_BLOCKED
        presented.close()


# (fault kind, INS of the APDU torn, nth such APDU)
TEAR_SAMPLE = [
    ("tear_after", 0xD4, 1),  # the first WRITE KEY (AMK) executed, card pulled
    ("tear_before", 0xDC, 5),  # an EF06 UPDATE RECORD never executed
    ("tear_after", 0xD4, 10),  # the initial PIN loaded (WRITE KEY P1 01), the answer lost
    ("tear_after", 0x4A, 1),  # GENERATE KEY PAIR executed, the public key never answered
    ("tear_after", 0x4A, 3),  # IMPORT ENCRYPTION KEY PAIR executed, the answer lost
    ("tear_after", 0xD6, 2),  # in the middle of the signature certificate
    ("tear_before", 0x44, 1),  # END OF PERSONALISATION not executed
    ("tear_after", 0x44, 1),  # END OF PERSONALISATION executed, card pulled before the answer
]


@pytest.mark.parametrize(("kind", "ins", "nth"), TEAR_SAMPLE)
def test_tear_over_pcsc_then_a_new_session_resumes(
    pcsc_stack: PcscStack,
    insert: Insert,
    psam_in_slot: PsamKeySource,
    registry: Opened,
    kind: str,
    ins: int,
    nth: int,
) -> None:
    reg, journal = registry
    reader = pcsc_stack.reader_for_slot(CARD_SLOT)
    hook: JournalHook = (
        RegistryJournal(journal, terminal=ACTOR.terminal, operator=ACTOR.operator)
        if ins == 0x44
        else MemoryJournal()
    )
    plan = FaultPlan()
    card = FaultyCard(CardOS(demo_stock_card_image(40 + ins + nth)), plan)
    order = order_for(card_number=f"Y{ins:04X}{nth:04d}")
    plan.arm(Fault.of(kind, ins=ins, nth=nth))
    with insert(card):
        session = _session(reader, psam_in_slot, hook)
        with pytest.raises(CardRemovedError):
            issue_card(session, order, registry=reg, actor=ACTOR)
        assert plan.fired
    with insert(card):
        fresh = _session(reader, psam_in_slot, hook)
        state = inspect_card(fresh)
        expected = LifeCycle.PERSONALISED if (kind, ins) == ("tear_after", 0x44) else LifeCycle.BLANK
        assert state.life_cycle is expected
        result = issue_card(fresh, order, registry=reg, actor=ACTOR)
        assert result.resumed
        assert result.life_cycle is LifeCycle.PERSONALISED
        assert hook.incomplete(result.card_id) == []
        check_finished_card(fresh, SSN, PIN)
        fresh.close()

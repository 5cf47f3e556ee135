"""Replacement in process: the registry's rules checked before the new card is
touched, the new card issued and recorded as the old card's successor, the
old card refused (and blocked) at its next presentation, tear resumption."""

from __future__ import annotations

import pytest
from issuance_helpers import ACTOR, READER, StockCard, anchors, check_finished_card, order_for, psam_source

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal import flows
from terminal.errors import TornOperation
from terminal.flows.issuance import replace_card
from terminal.issuance import IssuanceOrder, ReplacementHolderMismatch, ReplacementReasonRefused
from terminal.journal_hook import MemoryJournal
from terminal.presentation import PresentationGate
from terminal.registry import Journal, Registry
from terminal.registry.errors import (
    CardClosed,
    CardRefused,
    CardStateRefused,
    ReplacementBankMismatch,
    ReplacementGenerationRefused,
)
from terminal.session import CardSession

Opened = tuple[Registry, Journal]
SSN = "110102197305211008"


def _old_card(reg: Registry, *, status: str = "active") -> tuple[CardOS, str]:
    """The demo generation-3 card, registered for its holder."""
    card = CardOS(demo_card_image())
    card_id = card.image.card_id.hex().upper()
    reg.register_holder(SSN, "张三", gender="1", birth_date="1973-05-21")
    reg.register_card(card_id, "X00000019", SSN, 3, "Bank of Beijing", "2025-03-01", "2035-02-28", status)
    return card, card_id


def _new_order() -> IssuanceOrder:
    return order_for(card_number="X00000051", issue_date="2025-06-01", expiry_date="2035-05-31")


def test_replacement_of_a_lost_card(registry: Opened) -> None:
    reg, _ = registry
    old_card, old_id = _old_card(reg)
    reg.report_loss_formal(old_id, ACTOR)
    stock = StockCard(20)
    journal = MemoryJournal()
    session = stock.session(journal=journal)
    result = replace_card(session, _new_order(), old_id, registry=reg, actor=ACTOR, activate=True)
    assert result.operation == "replace" and result.replaces == old_id
    assert result.to_dict()["life_cycle"] == "active" and result.registry_status == "active"
    check_finished_card(session, SSN, "211008")
    old, new = reg.card(old_id), reg.card(result.card_id)
    assert old.status == "replaced" and old.replaced_by == result.card_id and new.replaces == old_id
    entry = journal.last("card.replace")
    assert entry.result == "ok" and entry.details["replaces"] == old_id and entry.details["reason"] == "lost"
    # the old card: refused at its next presentation, blocked on the card
    transport = InProcessTransport(old_card, reader=READER)
    gate = PresentationGate(reg, actor=ACTOR)
    presented = CardSession(transport, key_source=psam_source(), trust_anchors=anchors(), gate=gate)
    presented.connect()
    assert presented.presentation is not None and presented.presentation.refused
    assert presented.presentation.decision is not None
    assert presented.presentation.decision.reason_id == "card_replaced"
    assert old_card.image.life_cycle is LifeCycle.PERMANENTLY_BLOCKED
    with pytest.raises(CardRefused) as refused:
        flows.read_holder(presented)
    assert refused.value.national_code == -1162
    assert not reg.check_presented(old_id).allowed


def test_replacement_of_a_damaged_card_in_hand(registry: Opened) -> None:
    reg, _ = registry
    _, old_id = _old_card(reg, status="issued")
    stock = StockCard(21)
    result = replace_card(stock.session(), _new_order(), old_id, registry=reg, actor=ACTOR, reason="damaged")
    assert result.registry_status == "issued" and reg.card(old_id).status == "replaced"
    with pytest.raises(CardClosed):
        replace_card(StockCard(22).session(), _new_order(), old_id, registry=reg, actor=ACTOR)


def test_replacement_refusals_leave_the_new_card_blank(registry: Opened) -> None:
    reg, _ = registry
    _, old_id = _old_card(reg)
    stock = StockCard(23)
    journal = MemoryJournal()
    reg.report_loss_temporary(old_id, ACTOR)
    with pytest.raises(CardStateRefused) as temporary:
        replace_card(stock.session(journal=journal), _new_order(), old_id, registry=reg, actor=ACTOR)
    assert temporary.value.exit_code == 10 and journal.last("card.replace").result == "refused"
    reg.report_loss_formal(old_id, ACTOR)
    with pytest.raises(ReplacementReasonRefused):
        replace_card(stock.session(), _new_order(), old_id, registry=reg, actor=ACTOR, reason="damaged")
    stranger = order_for("x_long_name", region_code="110102", card_number="X00000051")
    with pytest.raises(ReplacementHolderMismatch):
        replace_card(stock.session(), stranger, old_id, registry=reg, actor=ACTOR)
    other_bank = order_for(card_number="X00000051", bank="ICBC")
    with pytest.raises(ReplacementBankMismatch):
        replace_card(stock.session(), other_bank, old_id, registry=reg, actor=ACTOR)
    gen2 = StockCard(24, generation=2)
    with pytest.raises(ReplacementGenerationRefused):
        replace_card(gen2.session(), order_for(card_number="X00000051"), old_id, registry=reg, actor=ACTOR)
    assert stock.os.image.revision == 0 and gen2.os.image.revision == 0
    assert reg.card(old_id).status == "lost"


def test_replacement_torn_at_the_end_of_personalisation_resumes(registry: Opened) -> None:
    reg, _ = registry
    _, old_id = _old_card(reg)
    reg.report_loss_formal(old_id, ACTOR)
    stock = StockCard(25)
    journal = MemoryJournal()
    stock.arm("tear_after", 1, ins=0x44)
    with pytest.raises(TornOperation):
        replace_card(stock.session(journal=journal), _new_order(), old_id, registry=reg, actor=ACTOR)
    assert stock.os.image.life_cycle is LifeCycle.PERSONALISED and reg.card(old_id).status == "lost"
    result = replace_card(stock.session(journal=journal), _new_order(), old_id, registry=reg, actor=ACTOR)
    assert result.resumed and result.steps_run == 0
    assert [(e.outcome, e.note) for e in result.resolved] == [("applied", "the card is personalised")]
    assert reg.card(old_id).replaced_by == result.card_id and journal.incomplete(result.card_id) == []

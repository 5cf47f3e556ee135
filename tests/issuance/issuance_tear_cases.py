"""The issuance tear sweep's cases, shared by tests/issuance/test_issuance_tear.py
and the reliability campaign (tests/reliability/test_rel_tear_issuance.py):
an instant issuance run clean (its APDUs), and one torn case (consistent card,
journal steps settled, the issuance resumed to the end and registered)."""

from __future__ import annotations

import pytest
from issuance_helpers import ACTOR, StockCard, check_finished_card, order_for

from apdu.errors import CardRemovedError, WrongCardType
from card_model.lifecycle import LifeCycle
from terminal.flows.issuance import inspect_card, issue_card
from terminal.journal_hook import MemoryJournal
from terminal.keysource import DevKeyFileKeySource
from terminal.registry import Registry

SSN = "110102197305211008"
PIN = "211008"
STATE_CHANGING = {(0x84, 0xD4), (0x04, 0xDC), (0x04, 0xD6), (0x84, 0x4A), (0x84, 0x44)}
FULL_CHECK_EVERY = 9


def clean_run(registry: Registry, keys: DevKeyFileKeySource) -> list[tuple[int, int]]:
    stock = StockCard(9000)
    seen: list[tuple[int, int]] = []
    original = stock.os.process

    def process(apdu: bytes) -> bytes:
        seen.append((apdu[0], apdu[1]))
        return original(apdu)

    stock.os.process = process  # type: ignore[method-assign]
    issue_card(
        stock.session(key_source=keys), order_for(card_number="Z00009000"), registry=registry, actor=ACTOR
    )
    return seen


def sweep_case(
    registry: Registry, keys: DevKeyFileKeySource, kind: str, index: int, number: int, full: bool
) -> None:
    order = order_for(card_number=f"Z{number:08d}")
    stock = StockCard(number)
    journal = MemoryJournal()
    stock.arm(kind, index)
    with pytest.raises(CardRemovedError):
        issue_card(stock.session(key_source=keys, journal=journal), order, registry=registry, actor=ACTOR)
    assert stock.plan.fired and stock.plan.fired[0].apdu_index == index
    state = inspect_card(stock.session(key_source=keys))
    if state.life_cycle is LifeCycle.BLANK:
        # recognisably unfinished: life cycle 00, and no ordinary session takes it for an issued card
        # until its EF05 card facts exist; END OF PERSONALISATION has not run
        assert state.flags != 0x3F or state.loaded_roles
        try:
            stock.session(key_source=keys).connect()
        except WrongCardType:
            pass
    else:
        # finished when torn: complete, before any resumption
        assert state.life_cycle is LifeCycle.PERSONALISED and state.flags == 0x3F
        check_finished_card(stock.session(key_source=keys), SSN, PIN)
    result = issue_card(
        stock.session(key_source=keys, journal=journal), order, registry=registry, actor=ACTOR
    )
    assert result.life_cycle is LifeCycle.PERSONALISED and result.registry_status == "issued"
    assert journal.incomplete(result.card_id) == []
    issues = [e for e in journal.entries if e.operation == "card.issue"]
    assert [e.result for e in issues if e.result == "ok"] == ["ok"]  # an attempt torn before a write: failed
    assert registry.card(result.card_id).card_number == order.card_number.value
    if full or state.life_cycle is not LifeCycle.BLANK:
        check_finished_card(stock.session(key_source=keys), SSN, PIN)

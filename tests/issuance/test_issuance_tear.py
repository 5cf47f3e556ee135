"""A tear at every APDU of an instant issuance (in process, the emulator's
fault plan): before the card executes it, and — for every command that
changes the card — after.  Each tear is followed by a new session that finds
a consistent card (recognisably unfinished: blank with its progress
readable, or finished and complete) and resumes the issuance to the end.

The sweep counts the APDUs of a clean issuance first, so it follows the
flow when steps are added.  Full read / authenticity / PIN checks run on
every card that was finished when torn and on a sample of the others (every
card gets the state, registry and journal checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from issuance_helpers import ACTOR, StockCard, check_finished_card, order_for

from apdu.errors import CardRemovedError, WrongCardType
from card_model.demo import demo_key_set
from card_model.lifecycle import LifeCycle
from terminal.flows.issuance import inspect_card, issue_card
from terminal.journal_hook import MemoryJournal
from terminal.keysource import DevKeyFileKeySource, DevKeysWarning
from terminal.registry import Journal, Registry

SSN = "110102197305211008"
PIN = "211008"
STATE_CHANGING = {(0x84, 0xD4), (0x04, 0xDC), (0x04, 0xD6), (0x84, 0x4A), (0x84, 0x44)}
FULL_CHECK_EVERY = 9

Opened = tuple[Registry, Journal]


@pytest.fixture(scope="module")
def keys() -> Iterator[DevKeyFileKeySource]:
    with pytest.warns(DevKeysWarning):
        source = DevKeyFileKeySource(demo_key_set())
    yield source


def _clean_run(registry: Registry, keys: DevKeyFileKeySource) -> list[tuple[int, int]]:
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


def _sweep_case(
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


def test_tear_at_every_apdu_of_issuance(registry: Opened, keys: DevKeyFileKeySource) -> None:
    reg, _ = registry
    apdus = _clean_run(reg, keys)
    assert len(apdus) > 80
    cases = [("tear_before", i) for i in range(1, len(apdus) + 1)]
    cases += [("tear_after", i) for i, key in enumerate(apdus, start=1) if key in STATE_CHANGING]
    for case, (kind, index) in enumerate(cases):
        _sweep_case(reg, keys, kind, index, 10000 + case, full=case % FULL_CHECK_EVERY == 0)

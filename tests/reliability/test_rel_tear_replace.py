"""Tearing campaign, replacement issuance (``replace_card``, journal
``card.replace``): a new stock card personalised for the holder of a card
that is exchanged, the old card ``replaced`` in the registry.

A clean replacement is recorded first (its APDUs and the card's state after
each: which commands change the card).  Then one replacement per tear point,
a chain: each case's new card replaces the previous case's (damaged, in
hand), so every case starts from a registry where the old card is issued.
Tear points: before and after every card-changing APDU and every APDU after
the last one (END OF PERSONALISATION; the registry's replace step comes
between those reads), and both kinds at every ``SAMPLE_EVERY``-th of the
others.  After each tear:

* the card is recognisably unfinished (blank, its progress readable) or
  finished and complete; the registry has not replaced the old card unless
  the tear came after its replace step (then by this new card);
* the replacement is resumed with the same order to the end: the new card
  is PERSONALISED, the old card ``replaced`` by it, the new card recorded
  once (its history has the clean run's events, once), the old card's
  history one replacement; the journal has no entry left open and exactly
  one ``card.replace`` entry resolved ``ok``;
* on a sample (and every card already finished when torn), every read,
  authenticity and PIN check passes on the new card.

Plus the registry failing once after the card is finished: the next run
completes the registry side without writing to the card or duplicating.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rel_tear import KINDS, TearKind, persistent, psam_source
from rel_tear_personalisation import (
    ACTOR,
    PIN,
    SSN,
    Recorded,
    StockCard,
    check_finished_card,
    order_for,
    record,
)

from apdu.errors import CardRemovedError, WrongCardType
from card_model.demo import demo_card_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal.flows.issuance import IssuanceResult, ReplacementReason, inspect_card, replace_card
from terminal.issuance import IssuanceOrder
from terminal.journal_hook import MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.registry import NewCard, Registry, open_registry
from terminal.registry.errors import RegistryStorageError
from terminal.session import CardSession

FIRST_NUMBER = 62000
SAMPLE_EVERY = 5
FULL_CHECK_EVERY = 7
REASON: ReplacementReason = "damaged"
HOLDER_NAME = "张三"
OLD_CARD = ("X00000019", 3, "Bank of Beijing", "2025-03-01", "2035-02-28", "issued")


@dataclass
class Chain:
    """The registry and the holder's current card (the next case replaces it)."""

    registry: Registry
    keys: PsamKeySource
    card_id: str
    number: int = FIRST_NUMBER

    def next_number(self) -> int:
        self.number += 1
        return self.number


def _order(number: int) -> IssuanceOrder:
    return order_for(card_number=f"Z{number:08d}")


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    """A registry holding the demo holder's generation-3 card (issued)."""
    registry, _ = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    old_id = CardOS(demo_card_image()).image.card_id.hex().upper()
    registry.register_holder(SSN, HOLDER_NAME, gender="1", birth_date="1973-05-21")
    number, generation, bank, issued, expiry, status = OLD_CARD
    registry.register_card(old_id, number, SSN, generation, bank, issued, expiry, status)
    try:
        yield Chain(registry, psam_source(), old_id)
    finally:
        registry.close()


def _replace(chain: Chain, session: CardSession, order: IssuanceOrder, old_id: str) -> IssuanceResult:
    return replace_card(session, order, old_id, registry=chain.registry, actor=ACTOR, reason=REASON)


def _clean_run(chain: Chain) -> tuple[Recorded, list[str]]:
    """A clean replacement (the chain's first link): APDUs, boundary states, the new card's events."""
    number = chain.next_number()
    template = CardOS(demo_stock_card_image(number))
    old_id = chain.card_id
    run = record(template, chain.keys, lambda s: _replace(chain, s, _order(number), old_id))
    new_id = template.image.card_id.hex().upper()
    assert chain.registry.card(old_id).replaced_by == new_id
    chain.card_id = new_id
    return run, [e.event for e in chain.registry.history(new_id)]


def _check_registry(chain: Chain, old_id: str, new_id: str, events: list[str], where: str) -> None:
    old, new = chain.registry.card(old_id), chain.registry.card(new_id)
    assert old.status == "replaced" and old.replaced_by == new_id, f"{where}: old card {old.status}"
    assert new.replaces == old_id and new.effective_status == "issued", f"{where}: new card {new.status}"
    assert [e.event for e in chain.registry.history(new_id)] == events, f"{where}: new card recorded twice"
    replaced = [e for e in chain.registry.history(old_id) if e.to_status == "replaced"]
    assert len(replaced) == 1 and replaced[0].related_card_id == new_id, f"{where}: old card replaced twice"


def _check_journal(journal: MemoryJournal, new_id: str, where: str) -> None:
    assert journal.incomplete(new_id) == [], f"{where}: entries left open"
    assert not [e for e in journal.entries if e.state in ("open", "torn")], where
    replaces = [e for e in journal.entries if e.operation == "card.replace" and e.result == "ok"]
    assert len(replaces) == 1, f"{where}: {len(replaces)} replacements ok"


def replace_case(chain: Chain, events: list[str], kind: TearKind, index: int, *, full: bool) -> str:
    """One tear point (module docstring); returns the card's state when torn."""
    number = chain.next_number()
    order, old_id = _order(number), chain.card_id
    where = f"replace {kind} #{index}"
    stock = StockCard(number)
    new_id = stock.os.image.card_id.hex().upper()
    journal = MemoryJournal()
    stock.arm(kind, index)
    with pytest.raises(CardRemovedError):
        _replace(chain, stock.session(key_source=chain.keys, journal=journal), order, old_id)
    assert stock.plan.fired and stock.plan.fired[0].apdu_index == index, f"{where}: the tear did not fire"

    state = inspect_card(stock.session(key_source=chain.keys))
    old = chain.registry.card(old_id)
    if state.life_cycle is LifeCycle.BLANK:
        # recognisably unfinished: no ordinary session takes it for an issued card
        ordinary = stock.session(key_source=chain.keys)
        try:
            ordinary.connect()
        except WrongCardType:
            pass
        else:
            assert ordinary.life_cycle() is LifeCycle.BLANK, where
        assert old.status != "replaced", f"{where}: the old card replaced by an unfinished card"
        torn = "blank"
    else:
        assert state.life_cycle is LifeCycle.PERSONALISED and state.complete, where
        assert old.replaced_by in (None, new_id), where
        torn = "finished" if old.replaced_by is None else "finished, registered"

    result = _replace(chain, stock.session(key_source=chain.keys, journal=journal), order, old_id)
    assert result.card_id == new_id and result.life_cycle is LifeCycle.PERSONALISED, where
    assert result.registry_status == "issued" and result.replaces == old_id, where
    assert stock.os.image.life_cycle is LifeCycle.PERSONALISED, where
    _check_registry(chain, old_id, new_id, events, where)
    _check_journal(journal, new_id, where)
    if full or torn != "blank":
        check_finished_card(stock.session(key_source=chain.keys, journal=journal), SSN, PIN)
    chain.card_id = new_id
    return torn


def test_tear_replacement_at_every_card_changing_apdu(chain: Chain, tear_points: Counter[str]) -> None:
    run, events = _clean_run(chain)
    changing = run.changing()
    others = [i for i in range(1, run.apdus + 1) if i not in changing]
    assert len(changing) > 20 and others, f"{run.apdus} APDUs, {len(changing)} card-changing"
    # every APDU after END OF PERSONALISATION (the registry's replace step runs among them)
    last = [i for i in others if i > changing[-1]]
    sample = sorted({*others[::SAMPLE_EVERY], *last})
    points = [(kind, i) for i in sorted({*changing, *sample}) for kind in KINDS]
    seen = Counter(
        replace_case(chain, events, kind, index, full=case % FULL_CHECK_EVERY == 0)
        for case, (kind, index) in enumerate(points)
    )
    assert seen["blank"] and seen["finished"] and seen["finished, registered"], seen
    tear_points["gen3 replacement"] += len(points)
    print(
        f"tear points replacement: {run.apdus} APDUs ({len(changing)} card-changing), "
        f"{len(points)} points, cards {dict(seen)}"
    )


def test_registry_failure_after_the_card_is_finished(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The card is personalised, then the registry's replace step fails once:
    the next run completes the registry side only."""
    _, events = _clean_run(chain)
    number = chain.next_number()
    order, old_id = _order(number), chain.card_id
    stock = StockCard(number)
    new_id = stock.os.image.card_id.hex().upper()
    journal = MemoryJournal()
    calls: list[str] = []
    replace = chain.registry.replace

    def failing_once(old_card_id: str, new_card: NewCard, actor: object) -> object:
        calls.append(old_card_id)
        if len(calls) == 1:
            raise RegistryStorageError("sqlite:///registry.db: database is locked")
        return replace(old_card_id, new_card, actor)  # type: ignore[arg-type]

    monkeypatch.setattr(chain.registry, "replace", failing_once)
    with pytest.raises(RegistryStorageError):
        _replace(chain, stock.session(key_source=chain.keys, journal=journal), order, old_id)
    assert stock.os.image.life_cycle is LifeCycle.PERSONALISED
    assert chain.registry.card(old_id).status == "issued" and not chain.registry.exists(new_id)
    (open_entry,) = journal.incomplete(new_id)
    assert open_entry.operation == "card.replace" and open_entry.state == "open"
    finished = persistent(stock.os)
    revision = stock.os.image.revision

    result = _replace(chain, stock.session(key_source=chain.keys, journal=journal), order, old_id)
    assert result.resumed and result.steps_run == 0 and result.life_cycle is LifeCycle.PERSONALISED
    assert persistent(stock.os) == finished and stock.os.image.revision == revision, "the card was written"
    assert calls == [old_id, old_id]
    _check_registry(chain, old_id, new_id, events, "registry failure")
    _check_journal(journal, new_id, "registry failure")
    entry = journal.last("card.replace")
    assert entry.entry_id == open_entry.entry_id and entry.result == "ok"
    check_finished_card(stock.session(key_source=chain.keys, journal=journal), SSN, PIN)

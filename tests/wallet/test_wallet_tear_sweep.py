"""A tear at every APDU of load, purchase and ticket sale (before and after
the card executes it), in process; each followed by a new session whose
:func:`terminal.flows.resolve_torn` settles the journal so that the card's
balance and counters agree with it: money is neither lost nor created."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from wallet_helpers import NthTear, active_image, psam_source, session_for

from apdu.errors import CardRemovedError
from card_model.purse import PurseState
from emulator.card_os import CardOS
from terminal import flows
from terminal.errors import TornOperation
from terminal.flows import ticket, wallet
from terminal.journal_hook import MemoryJournal
from terminal.keysource import HsmKeySource, SoftwareHsm
from terminal.keysource.base import KeySource
from terminal.session import CardSession

START = 3000
AMOUNT = 1250
NOW = dt.datetime(2026, 6, 1, 9, 30, 0)
FLOWS: dict[str, Callable[[CardSession], object]] = {
    "wallet.load": lambda s: wallet.load(s, AMOUNT, now=NOW),
    "wallet.purchase": lambda s: wallet.purchase(s, AMOUNT, now=NOW),
    "ticket.buy": lambda s: ticket.buy_ticket(s, 2026, now=NOW),
}
APDUS = {"wallet.load": 5, "wallet.purchase": 5, "ticket.buy": 3}
DELTA = {"wallet.load": AMOUNT, "wallet.purchase": -AMOUNT, "ticket.buy": 0}


def _state(card: CardOS) -> PurseState:
    spec = card.profile.applications.purse
    assert spec is not None
    return PurseState.from_bytes(bytes(card.image.binary_files[spec.state_fid].content))


def _card(key_source: KeySource) -> CardOS:
    card = CardOS(active_image())
    session, _ = session_for(card, key_source=key_source)
    wallet.load(session, START, now=NOW)
    return card


@pytest.fixture(scope="module")
def psam() -> KeySource:
    return psam_source()


@pytest.mark.parametrize("operation", sorted(FLOWS))
def test_apdu_counts(operation: str, psam: KeySource) -> None:
    wrapper = NthTear(_card(psam))
    session, _ = session_for(wrapper, key_source=psam)
    start = wrapper.count
    FLOWS[operation](session)
    assert wrapper.count - start == APDUS[operation]


CASES = [(op, n, after) for op in sorted(FLOWS) for n in range(1, APDUS[op] + 1) for after in (False, True)]


@pytest.mark.parametrize(("operation", "nth", "after"), CASES)
def test_tear_at_every_apdu_is_resolved(operation: str, nth: int, after: bool, psam: KeySource) -> None:
    card = _card(psam)
    before = _state(card)
    journal = MemoryJournal()
    wrapper = NthTear(card)
    session, transport = session_for(wrapper, key_source=psam, journal=journal)
    wrapper.transport = transport
    wrapper.arm(nth, after=after)
    try:
        FLOWS[operation](session)
        completed = True
    except (TornOperation, CardRemovedError) as exc:
        completed = False
        torn = isinstance(exc, TornOperation)
    assert wrapper.fired is not None, "the tear did not happen"
    transport.insert(wrapper)
    fresh, _ = session_for(wrapper, key_source=psam, journal=journal)
    resolution = flows.resolve_torn(fresh)
    assert not resolution.unresolved
    entries = [e for e in journal.entries if e.operation == operation and e.result != "refused"]
    assert all(e.state in ("completed", "resolved") for e in journal.entries)
    applied = [e for e in entries if e.result == "ok"]
    assert len(applied) <= 1
    if not completed and torn:
        (outcome,) = resolution.entries
        assert outcome.outcome == ("applied" if after else "not_applied")
        assert outcome.resolved and operation in outcome.operation
    now = _state(card)
    moved = DELTA[operation] if applied else 0
    assert now.balance == before.balance + moved
    if operation == "wallet.load":
        assert now.online_counter == before.online_counter + (1 if applied else 0)
        assert now.offline_counter == before.offline_counter
    if operation == "wallet.purchase":
        assert now.offline_counter == before.offline_counter + (1 if applied else 0)
    if operation == "ticket.buy":
        status = ticket.read_ticket(fresh, on=NOW.date())
        assert status.present == bool(applied)
    # the card keeps working with consistent counters
    again = wallet.load(fresh, 1, now=NOW)
    assert again.counter == now.online_counter and again.balance == now.balance + 1


@pytest.mark.parametrize("after", [False, True])
def test_resolution_verifies_the_tac_with_a_security_module(after: bool) -> None:
    hsm = HsmKeySource(SoftwareHsm(__import__("card_model.demo", fromlist=["demo_key_set"]).demo_key_set()))
    card = _card(hsm)
    journal = MemoryJournal()
    wrapper = NthTear(card)
    session, transport = session_for(wrapper, key_source=hsm, journal=journal)
    wrapper.transport = transport
    wrapper.arm(4, after=after)  # DEBIT FOR PURCHASE
    with pytest.raises(TornOperation):
        wallet.purchase(session, AMOUNT, now=NOW)
    transport.insert(wrapper)
    fresh, _ = session_for(wrapper, key_source=hsm, journal=journal)
    (outcome,) = flows.resolve_torn(fresh).entries
    entry = journal.last("wallet.purchase")
    assert entry.state == "resolved" and entry.resolution == f"card_state_{outcome.outcome}"
    if after:
        assert outcome.outcome == "applied" and "TAC verified" in outcome.note
    else:
        assert outcome.outcome == "not_applied" and "balance now 30.00" in outcome.note


def test_undetermined_when_the_records_no_longer_reach_back(psam: KeySource) -> None:
    card = _card(psam)
    journal = MemoryJournal()
    wrapper = NthTear(card)
    session, transport = session_for(wrapper, key_source=psam, journal=journal)
    wrapper.transport = transport
    wrapper.arm(4, after=False)
    with pytest.raises(TornOperation):
        wallet.purchase(session, 100, now=NOW)
    transport.insert(wrapper)
    # elsewhere (no journal): ten loads fill the transaction file before the card comes back
    other, _ = session_for(wrapper, key_source=psam, journal=MemoryJournal())
    for _ in range(10):
        wallet.load(other, 1, now=NOW)
    fresh, _ = session_for(wrapper, key_source=psam, journal=journal)
    resolution = flows.resolve_torn(fresh)
    (outcome,) = resolution.entries
    assert outcome.outcome == "undetermined" and not outcome.resolved and resolution.unresolved
    assert journal.last("wallet.purchase").state == "torn"


def test_counter_reused_elsewhere_means_not_applied(psam: KeySource) -> None:
    card = _card(psam)
    journal = MemoryJournal()
    wrapper = NthTear(card)
    session, transport = session_for(wrapper, key_source=psam, journal=journal)
    wrapper.transport = transport
    wrapper.arm(4, after=False)
    with pytest.raises(TornOperation):
        wallet.purchase(session, 100, now=NOW)
    transport.insert(wrapper)
    other, _ = session_for(wrapper, key_source=psam, journal=MemoryJournal())
    wallet.purchase(other, 1, now=NOW)  # elsewhere, the same purchase counter is used by another purchase
    fresh, _ = session_for(wrapper, key_source=psam, journal=journal)
    (outcome,) = flows.resolve_torn(fresh).entries
    assert outcome.outcome == "not_applied" and "used by another transaction" in outcome.note

"""Tear safety in process: torn writes are journalled, the next session resolves them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from terminal_cards import TearingCard, anchors, card_os, inprocess_session, psam_source

from apdu.errors import CardRemovedError
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal import flows
from terminal.errors import TornOperation
from terminal.journal_hook import JournalScope, MemoryJournal, RegistryJournal
from terminal.registry import open_registry
from terminal.registry.errors import JournalDetailsForbidden
from terminal.session import CardSession

INITIAL = "211008"
INS_CHANGE_RELOAD = 0x5E
INS_UNBLOCK_PIN = 0x24
INS_ACTIVATE = 0x44
INS_BLOCK = 0x1E
INS_UNBLOCK = 0x18
INS_UPDATE_RECORD = 0xDC


def _tear(
    card: CardOS,
    journal: Any,
    ins: int,
    execute: bool,
    flow: Callable[[CardSession], object],
    prepare: Callable[[CardSession], object] | None = None,
) -> tuple[TornOperation, CardSession]:
    psam = psam_source()
    session, transport, wrapper = inprocess_session(card, key_source=psam, journal=journal, tearing=True)
    assert wrapper is not None
    if prepare is not None:
        prepare(session)
    wrapper.arm(ins, execute=execute)
    with pytest.raises(TornOperation) as info:
        flow(session)
    assert wrapper.torn and transport.card is None
    transport.insert(wrapper)
    transport.disconnect()
    fresh = CardSession(transport, key_source=psam, journal=journal, trust_anchors=anchors())
    fresh.connect()
    return info.value, fresh


@pytest.mark.parametrize("execute", [True, False])
def test_torn_change_pin(execute: bool) -> None:
    journal = MemoryJournal()
    error, session = _tear(
        card_os(3), journal, INS_CHANGE_RELOAD, execute, lambda s: flows.change_pin(s, INITIAL, "135790")
    )
    assert (
        error.national_code == -2 and error.operation == "pin.change" and isinstance(error, CardRemovedError)
    )
    entry = journal.last("pin.change")
    assert entry.state == "torn" and "CHANGE PIN" in (entry.torn_note or "")
    assert error.to_dict()["journal_entry"] == entry.entry_id
    resolution = flows.resolve_torn(session)
    (outcome,) = resolution.entries
    assert outcome.outcome == ("applied" if execute else "not_applied")
    assert entry.state == "resolved" and entry.result == ("ok" if execute else "failed")
    status = flows.pin_status(session)
    assert status.state == ("ok" if execute else "initial")
    flows.verify_pin(session, "135790" if execute else INITIAL)
    assert flows.resolve_torn(session).entries == ()


@pytest.mark.parametrize("execute", [True, False])
def test_torn_reset_pin(execute: bool) -> None:
    journal = MemoryJournal()

    def lock(session: CardSession) -> None:
        flows.change_pin(session, INITIAL, "135790")
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 - PinError, counted below
                flows.verify_pin(session, "000000")

    _, session = _tear(card_os(3), journal, INS_CHANGE_RELOAD, execute, flows.reset_pin, prepare=lock)
    (outcome,) = flows.resolve_torn(session).entries
    assert outcome.outcome == ("applied" if execute else "not_applied")
    status = flows.pin_status(session)
    assert status.state == ("initial" if execute else "blocked")


@pytest.mark.parametrize("execute", [True, False])
def test_torn_activate(execute: bool) -> None:
    journal = MemoryJournal()
    _, session = _tear(card_os(3), journal, INS_ACTIVATE, execute, flows.activate)
    (outcome,) = flows.resolve_torn(session).entries
    assert outcome.outcome == ("applied" if execute else "not_applied")
    assert session.life_cycle() is (LifeCycle.ACTIVE if execute else LifeCycle.PERSONALISED)


@pytest.mark.parametrize(
    ("ins", "flow", "prepare", "expected"),
    [
        (INS_BLOCK, lambda s: flows.block(s, "permanent"), None, LifeCycle.PERMANENTLY_BLOCKED),
        (INS_UNBLOCK, flows.unblock, flows.block, LifeCycle.PERSONALISED),
    ],
)
def test_torn_block_and_unblock(ins: int, flow: Any, prepare: Any, expected: LifeCycle) -> None:
    journal = MemoryJournal()
    _, session = _tear(card_os(3), journal, ins, True, flow, prepare=prepare)
    (outcome,) = flows.resolve_torn(session).entries
    assert outcome.outcome == "applied" and session.life_cycle() is expected


def test_torn_pin_unblock() -> None:
    journal = MemoryJournal()

    def lock(session: CardSession) -> None:
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 - PinError
                flows.verify_pin(session, "000000")

    _, session = _tear(card_os(3), journal, INS_UNBLOCK_PIN, False, flows.unblock_pin, prepare=lock)
    (outcome,) = flows.resolve_torn(session).entries
    assert outcome.outcome == "not_applied" and flows.pin_status(session).state == "blocked"


def test_torn_record_writes() -> None:
    journal = MemoryJournal()
    write = lambda s: flows.write_generic(s, "3F00EF07|21|23|$", "13700000000|100088|")  # noqa: E731
    _, session = _tear(card_os(3), journal, INS_UPDATE_RECORD, True, write)
    (partial,) = flows.resolve_torn(session).entries
    assert partial.outcome == "undetermined" and not partial.resolved
    assert journal.last("card.write").state == "torn"
    flows.write_generic(session, "3F00EF07|21|23|$", "13700000000|100088|")
    (applied,) = flows.resolve_torn(session).entries
    assert applied.outcome == "applied" and journal.entries[-2].state == "resolved"


def test_chosen_reset_over_full_counter_is_undetermined() -> None:
    journal = MemoryJournal()
    _, session = _tear(
        card_os(3),
        journal,
        INS_CHANGE_RELOAD,
        True,
        lambda s: flows.reset_pin(s, new_pin="246801"),
        prepare=lambda s: flows.change_pin(s, INITIAL, "135790"),
    )
    resolution = flows.resolve_torn(session)
    assert [e.outcome for e in resolution.unresolved] == ["undetermined"]
    assert journal.last("pin.reset").state == "torn"


def test_open_entry_of_a_crashed_terminal_and_interrupted_read() -> None:
    journal = MemoryJournal()
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source(), journal=journal)
    journal.begin("card.activate", card_id=session.card_id, details={"life_cycle_before": "personalised"})
    journal.begin("card.read_holder", card_id=session.card_id, details={})
    journal.begin("card.activate", card_id="11" * 16, details={"life_cycle_before": "personalised"})
    outcomes = flows.resolve_torn(session).entries
    assert [(o.operation, o.outcome) for o in outcomes] == [
        ("card.activate", "not_applied"),
        ("card.read_holder", "interrupted_read"),
    ]
    assert journal.entries[2].state == "open"


def test_registry_journal_records_tear_and_resolution(tmp_path: Path) -> None:
    _, journal = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    hook = RegistryJournal(journal, terminal="BJ-T-0001", operator="op-001")
    error, session = _tear(
        card_os(3), hook, INS_CHANGE_RELOAD, True, lambda s: flows.change_pin(s, INITIAL, "135790")
    )
    assert error.entry_id is not None
    torn = journal.entry(error.entry_id)
    assert torn.state == "torn" and torn.operation == "pin.change"
    assert torn.details == {"initial_before": "true", "tries_before": "3"}
    flows.resolve_torn(session)
    resolved = journal.entry(error.entry_id)
    assert (
        resolved.state == "resolved"
        and resolved.resolution == "card_state_applied"
        and resolved.result == "ok"
    )
    flows.verify_pin(session, "135790")
    verify = journal.query(card_id=session.card_id, operation="pin.verify")[-1]
    assert verify.state == "completed" and verify.result == "ok"
    exported = journal.export("json")
    for secret in ("135790", INITIAL, "110102197305211008"):
        assert secret not in exported
    journal.close()


def test_scope_refuses_secret_details_before_the_card() -> None:
    session, transport, wrapper = inprocess_session(card_os(3), tearing=True)
    assert wrapper is not None
    wrapper.arm(0x20, execute=False)
    with pytest.raises(JournalDetailsForbidden):
        with JournalScope(session.journal, "pin.verify", session.card_id, {"new_pin": "123456"}):
            flows.verify_pin(session, INITIAL)
    assert not wrapper.torn and transport.connected


def test_failing_begin_sends_nothing() -> None:
    class Broken(MemoryJournal):
        def begin(self, operation: str, *, card_id: str | None, details: Any) -> int | None:
            raise OSError("journal storage down")

    card = card_os(3)
    session, _, wrapper = inprocess_session(card, journal=Broken(), tearing=True, key_source=psam_source())
    assert isinstance(wrapper, TearingCard)
    wrapper.arm(INS_ACTIVATE, execute=True)
    with pytest.raises(OSError):
        flows.activate(session)
    assert not wrapper.torn and card.image.life_cycle is LifeCycle.PERSONALISED

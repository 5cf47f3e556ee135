"""Every flow journals through the one hook: its documented operation name, a
completed entry with the result, and never a PIN in the details."""

from __future__ import annotations

from terminal_cards import card_os, inprocess_session, psam_source

from apdu.errors import PinError
from card_model.lifecycle import LifeCycle
from terminal import flows
from terminal.journal_hook import MemoryJournal

INITIAL = "211008"
NEW = "135790"
PINS = (INITIAL, NEW, "000000", "246801")


def test_every_flow_journals_its_operation() -> None:
    journal = MemoryJournal()
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source(), journal=journal)
    with session:
        flows.read_basic(session)
        flows.read_holder(session)
        flows.authenticate_card(session)
        flows.pin_status(session)
        flows.verify_pin(session, INITIAL)
        flows.change_pin(session, INITIAL, NEW)
        try:
            flows.verify_pin(session, "000000")
        except PinError:
            pass
        flows.unblock_pin(session)
        flows.reset_pin(session, new_pin="246801")
        flows.activate(session)
        flows.block(session)
        flows.unblock(session)
        flows.card_status(session, key_counters=True)
        flows.read_generic(session, "3F00EF05|07|$")
        flows.write_generic(session, "3F00EF07|23|$", "100000|")
        assert session.life_cycle() is LifeCycle.ACTIVE
    operations = [entry.operation for entry in journal.entries]
    assert operations == [
        "card.read_basic",
        "card.read_holder",
        "card.authenticate",
        "pin.status",
        "pin.verify",
        "pin.change",
        "pin.verify",
        "pin.unblock",
        "pin.reset",
        "card.activate",
        "card.block",
        "card.unblock",
        "card.status",
        "card.read",
        "card.write",
    ]
    assert all(entry.state == "completed" for entry in journal.entries)
    results = [entry.result for entry in journal.entries]
    assert results.count("failed") == 1 and results[6] == "failed"  # the wrong PIN, with its code
    assert journal.entries[6].national_code == -51 and journal.entries[6].sw == 0x63C2
    assert len({entry.card_id for entry in journal.entries}) == 1 and journal.entries[0].card_id
    for entry in journal.entries:
        texts = [*entry.details.values(), *entry.outcome_details.values()]
        assert not any(pin in text for pin in PINS for text in texts), entry.operation

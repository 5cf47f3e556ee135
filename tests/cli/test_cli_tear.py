"""A card pulled in the middle of a CLI command: a clear error (exit 4), the
journal entry marked torn, and the next command settles it from the card."""

from __future__ import annotations

from cli_helpers import (
    INITIAL_PIN,
    NEW_PIN,
    OTHER_SLOT,
    assert_no_pin,
    card_os,
    inserted,
    json_err,
    json_out,
    run,
)

from emulator.faults import Fault, FaultPlan, FaultyCard
from terminal.registry import open_registry


def test_card_pulled_during_pin_change_is_reported_and_settled(other_reader: str, psam: str) -> None:
    card = card_os()
    plan = FaultPlan()
    plan.arm(Fault.of("tear_after", ins=0x5E))  # CHANGE PIN runs, then the card is gone
    with inserted(FaultyCard(card, plan), OTHER_SLOT, other_reader):
        torn = run(
            ["--json", "--reader", other_reader, "pin", "change", "--pin-stdin", "--journal", "registry"],
            input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n",
        )
    assert torn.exit_code == 4 and torn.stdout == ""
    body = json_err(torn)
    assert body["error"] == "card_removed_torn" and body["national_code"] == "-2"
    assert body["operation"] == "pin.change" and isinstance(body["journal_entry"], int)
    assert_no_pin([torn.stderr], (NEW_PIN,))

    with inserted(card, OTHER_SLOT, other_reader):  # the same card back: it kept the change
        status = run(["--json", "--reader", other_reader, "pin", "status", "--journal", "registry"])
        assert status.exit_code == 0, status.stderr
        assert json_out(status)["state"] == "ok"
        assert f"#{body['journal_entry']} pin.change" in status.stderr  # settled, and said so
        again = run(["--reader", other_reader, "pin", "status", "--journal", "registry"])
        assert "pin.change" not in again.stderr  # nothing open any more
    registry, journal = open_registry()
    try:
        entry = journal.entry(body["journal_entry"])
        assert entry.result == "ok" and entry.state != "torn"
    finally:
        registry.close()


def test_card_pulled_before_activation_runs_is_not_applied(other_reader: str, psam: str) -> None:
    card = card_os()
    plan = FaultPlan()
    plan.arm(Fault.of("tear_before", ins=0x44))  # the card vanishes before ACTIVATE runs
    with inserted(FaultyCard(card, plan), OTHER_SLOT, other_reader):
        torn = run(["--json", "--reader", other_reader, "activate", "--journal", "registry"])
    assert torn.exit_code == 4 and json_err(torn)["error"] == "card_removed_torn"
    with inserted(card, OTHER_SLOT, other_reader):
        status = run(["--json", "--reader", other_reader, "status", "--no-keys", "--journal", "registry"])
        assert status.exit_code == 0, status.stderr
        assert json_out(status)["life_cycle"] == "personalised"
    registry, journal = open_registry()
    try:
        entry = journal.entry(json_err(torn)["journal_entry"])
        assert entry.result == "failed"
    finally:
        registry.close()

"""``sscard wallet|ticket|bankcard`` over pcscd + vpcd (slot 8 the card,
slot 9 the PSAM): text and JSON output, exit codes, the registry journal
and the tear settled at the next presentation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from wallet_helpers import Slot, active_card

from card_model.demo import demo_psam_image
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from terminal.cli import cli
from terminal.registry import open_registry

pytestmark = pytest.mark.pcsc

CARD_SLOT, PSAM_SLOT = 8, 9


@pytest.fixture(scope="module")
def psam_slot(pcsc_stack: PcscStack) -> Iterator[Slot]:
    slot = Slot(PSAM_SLOT, pcsc_stack.reader_for_slot(PSAM_SLOT))
    slot.insert(PsamCard(demo_psam_image()))
    try:
        yield slot
    finally:
        slot.remove()


@pytest.fixture
def card_slot(pcsc_stack: PcscStack, psam_slot: Slot) -> Iterator[Slot]:
    slot = Slot(CARD_SLOT, pcsc_stack.reader_for_slot(CARD_SLOT))
    try:
        yield slot
    finally:
        slot.remove()


def run(slot: Slot, args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--reader", slot.reader], env=env, catch_exceptions=False)


def out(result: Result) -> dict[str, object]:
    value: dict[str, object] = json.loads(result.stdout)
    return value


def test_wallet_commands(card_slot: Slot) -> None:
    card_slot.insert(active_card())
    result = run(card_slot, ["wallet", "load", "50", "--json"])
    assert result.exit_code == 0, result.stderr
    loaded = out(result)
    assert loaded["balance"] == "50.00" and loaded["amount_fen"] == 5000 and loaded["tac_verified"] is True
    result = run(card_slot, ["wallet", "purchase", "2.30"])
    assert result.exit_code == 0 and "47.70" in result.stdout and "交易后余额" in result.stdout
    assert out(run(card_slot, ["wallet", "balance", "--json"]))["balance_fen"] == 4770
    records = out(run(card_slot, ["wallet", "records", "--json"]))
    assert [r["type"] for r in records["records"]] == ["purchase", "load"]  # type: ignore[index,union-attr]
    text = run(card_slot, ["wallet", "records"])
    assert "消费 purchase" in text.stdout and "2.30" in text.stdout
    over = run(card_slot, ["wallet", "load", "999", "--json"])
    assert over.exit_code == 10
    assert json.loads(over.stderr.strip().splitlines()[-1])["error"] == "balance_limit_exceeded"
    assert run(card_slot, ["wallet", "purchase", "100"]).exit_code == 10
    for bad in ("0", "-1", "1.005", "abc"):
        assert run(card_slot, ["wallet", "load", bad]).exit_code == 2, bad
    assert out(run(card_slot, ["wallet", "balance", "--json"]))["balance"] == "47.70"


def test_ticket_and_bankcard_commands(card_slot: Slot) -> None:
    card_slot.insert(active_card())
    bought = run(card_slot, ["ticket", "buy", "--json"])
    assert bought.exit_code == 0, bought.stderr
    year = out(bought)["year"]
    again = run(card_slot, ["ticket", "buy", "--json"])
    assert again.exit_code == 10
    assert json.loads(again.stderr.strip().splitlines()[-1])["national_code"] == "-1710"
    assert run(card_slot, ["ticket", "buy", "--year", "1999"]).exit_code == 2
    gate = out(run(card_slot, ["ticket", "show", "--json"]))
    assert gate["present"] is True and gate["valid"] is True and gate["year"] == year
    assert (
        out(run(card_slot, ["ticket", "show", "--date", f"{int(year) + 1}-01-01", "--json"]))["valid"]
        is False
    )  # type: ignore[call-overload]
    bank = run(card_slot, ["bankcard"])
    assert bank.exit_code == 0 and "629113******" in bank.stdout and "北京银行" in bank.stdout
    assert out(run(card_slot, ["bankcard", "--json"]))["last4"] == bank.stdout.split("******")[1][:4]


def test_card_without_wallet_and_inactive_card(card_slot: Slot) -> None:
    card_slot.insert(active_card(1))
    assert run(card_slot, ["wallet", "balance"]).exit_code == 5
    assert run(card_slot, ["bankcard", "--json"]).exit_code == 0
    from card_model.lifecycle import LifeCycle

    card_slot.insert(active_card(life_cycle=LifeCycle.PERSONALISED))
    inactive = run(card_slot, ["wallet", "load", "1", "--json"])
    assert inactive.exit_code == 8
    assert json.loads(inactive.stderr.strip().splitlines()[-1])["error"] == "wallet_inactive"


def test_a_torn_load_is_settled_at_the_next_presentation(card_slot: Slot, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    env = {"SSCARD_DB_URL": url}
    card = CardOS(active_card().image)
    plan = FaultPlan()
    card_slot.insert(FaultyCard(card, plan))
    assert run(card_slot, ["wallet", "load", "10", "--journal", "registry"], env).exit_code == 0
    plan.arm(Fault.of("tear_after", ins=0x52))  # CREDIT FOR LOAD executed, the answer lost
    torn = run(card_slot, ["wallet", "load", "5", "--journal", "registry", "--json"], env)
    assert torn.exit_code == 4
    assert json.loads(torn.stderr.strip().splitlines()[-1])["error"] == "card_removed_torn"
    card_slot.reinsert()
    settled = run(card_slot, ["wallet", "balance", "--journal", "registry", "--json"], env)
    assert settled.exit_code == 0 and out(settled)["balance"] == "15.00"
    assert "wallet.load" in settled.stderr and "applied" in settled.stderr
    _, journal = open_registry(url)
    try:
        loads = journal.query(operation="wallet.load")
        assert [(e.state, e.result, e.resolution) for e in loads] == [
            ("completed", "ok", None),
            ("resolved", "ok", "card_state_applied"),
        ]
        assert "TAC verified" in (loads[1].resolution_note or "")
    finally:
        journal.close()

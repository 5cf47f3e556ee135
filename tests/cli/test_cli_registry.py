"""`--journal registry`: every flow journalled, the card passes the registry's
presentation gate: a card the registry refuses has its application blocked
on the card and stops the command (exit 10) except `status` / `block`; a
loss released unblocks it.  The registry is the SQLite file in
$SSCARD_DATA_DIR (a temporary directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import INITIAL_PIN, SSN, json_err, json_out, run

from terminal.registry import Actor, Journal, Registry, open_registry

CLERK = Actor(operator="op-1", terminal="T-1")


@pytest.fixture
def registry() -> Iterator[tuple[Registry, Journal]]:
    opened = open_registry()
    try:
        yield opened
    finally:
        opened[0].close()


def _card_id(card: str) -> str:
    card_id: str = json_out(run(["--json", "--reader", card, "read", "basic"]))["basic"]["card_id"]
    return card_id


def _register(registry: Registry, card_id: str) -> None:
    registry.register_holder(SSN, "张三", gender="1", birth_date="1973-05-21")
    registry.register_card(card_id, "X00000019", SSN, 3, "Bank of Beijing", "2025-03-01", "2035-02-28")


def test_flows_are_journalled(card: str, psam: str, registry: tuple[Registry, Journal]) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "verify", "--pin-stdin", "--journal", "registry"],
        input=f"{INITIAL_PIN}\n",
    )
    assert result.exit_code == 0, result.stderr
    card_id = _card_id(card)
    entries = registry[1].query(card_id=card_id)
    assert [e.operation for e in entries] == ["card.present", "pin.verify"]
    assert [e.result for e in entries] == ["ok", "ok"]
    assert entries[1].operator
    assert INITIAL_PIN not in str(entries)


def test_journal_from_the_configuration(
    card: str, psam: str, registry: tuple[Registry, Journal], tmp_path: Path
) -> None:
    config = tmp_path / "sscard.toml"
    config.write_text(
        '[cli]\njournal = "registry"\noperator = "clerk-7"\nterminal = "BJ-T-7"\n', encoding="utf-8"
    )
    result = run(["--config", str(config), "--reader", card, "read", "basic"])
    assert result.exit_code == 0, result.stderr
    entries = registry[1].query(card_id=_card_id(card))
    assert [e.operation for e in entries] == ["card.present", "card.read_basic"]
    assert {e.operator for e in entries} == {"clerk-7"}
    assert {e.terminal for e in entries} == {"BJ-T-7"}


def _status(card: str) -> dict[str, object]:
    result = run(["--json", "--reader", card, "status", "--journal", "registry"])
    assert result.exit_code == 0, result.stderr
    body: dict[str, object] = json_out(result)
    return body


def test_a_card_reported_lost_is_refused_and_blocked(
    card: str, psam: str, registry: tuple[Registry, Journal]
) -> None:
    card_id = _card_id(card)
    _register(registry[0], card_id)
    registry[0].report_loss_formal(card_id, CLERK)
    result = run(["--json", "--reader", card, "read", "holder", "--journal", "registry"])
    assert result.exit_code == 10
    error = json_err(result)
    assert error["error"] == "card_refused_by_registry"
    assert error["reason"] == "card_lost"
    assert error["block_on_card"] is True
    assert error["blocked"] is True
    assert error["national_code"] == "-1161"
    assert result.stdout == ""
    assert "已在卡上锁定应用" in result.stderr
    entries = [e for e in registry[1].query(card_id=card_id) if e.operation.startswith("card.")]
    assert [(e.operation, e.result) for e in entries] == [
        ("card.present", "refused"),
        ("card.block", "ok"),
        ("card.read_holder", "refused"),
    ]
    assert entries[0].national_code == -1161
    # the block is on the card: a terminal without the registry finds it blocked
    plain = run(["--json", "--reader", card, "status"])
    assert plain.exit_code == 0, plain.stderr
    assert json_out(plain)["life_cycle"] == "temporarily_blocked"


def test_a_released_loss_unblocks_the_card(card: str, psam: str, registry: tuple[Registry, Journal]) -> None:
    card_id = _card_id(card)
    before = _status(card)["life_cycle"]
    _register(registry[0], card_id)
    registry[0].report_loss_formal(card_id, CLERK)
    refused = run(["--json", "--reader", card, "read", "basic", "--journal", "registry"])
    assert refused.exit_code == 10
    assert _status(card)["life_cycle"] == "temporarily_blocked"
    registry[0].release_loss(card_id, CLERK)
    read = run(["--json", "--reader", card, "read", "basic", "--journal", "registry"])
    assert read.exit_code == 0, read.stderr
    assert "已在卡上解锁应用" in read.stderr
    assert json_out(read)["basic"]["card_id"] == card_id
    assert _status(card)["life_cycle"] == before == "personalised"
    operations = [(e.operation, e.result) for e in registry[1].query(card_id=card_id)]
    assert ("card.unblock", "ok") in operations


def test_a_refused_card_may_still_be_queried_and_blocked(
    card: str, psam: str, registry: tuple[Registry, Journal]
) -> None:
    card_id = _card_id(card)
    _register(registry[0], card_id)
    registry[0].report_loss_formal(card_id, CLERK)
    status = run(["--reader", card, "status", "--journal", "registry"])
    assert status.exit_code == 0, status.stderr
    assert "登记库提示 registry" in status.stderr
    blocked = run(["--json", "--reader", card, "block", "--permanent", "-y", "--journal", "registry"])
    assert blocked.exit_code == 0, blocked.stderr
    assert json_out(blocked)["life_cycle"] == "permanently_blocked"


def test_an_unregistered_card_is_allowed(card: str, registry: tuple[Registry, Journal]) -> None:
    result = run(["--reader", card, "read", "basic", "--journal", "registry"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_registry_storage_failure(card: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSCARD_DB_URL", "mysql://nowhere/none")
    result = run(["--json", "--reader", card, "read", "basic", "--journal", "registry"])
    assert result.exit_code == 1
    assert json_err(result)["error"] == "registry_url_invalid"


def test_registry_and_journal_groups_are_wired(card: str, registry: tuple[Registry, Journal]) -> None:
    card_id = _card_id(card)
    _register(registry[0], card_id)
    show = run(["--json", "registry", "show", card_id])
    assert show.exit_code == 0, show.stderr
    assert card_id in show.stdout
    missing = run(["--json", "registry", "show", "110102D156000005FFFFFFFFFFFFFFFF"])
    assert missing.exit_code == 10
    listed = run(["--json", "journal", "list"])
    assert listed.exit_code == 0, listed.stderr

"""`sscard registry` / `sscard journal` through a stand-in root group (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from terminal.registry import cli

SSN = "110102197305211008"
CARD = "110102D156000005" + "0000000000000019"
NEW_CARD = "110102D156000005" + "0000000000000020"
HOLDER_TOML = f"""
[holder]
ssn = "{SSN}"
name = "张三"
gender = "1"
ethnicity = "01"
birthplace = "110102"
birth_date = "1973-05-21"

[card]
card_number = "X00000019"
region_code = "110102"
issue_date = "2025-03-01"
expiry_date = "2035-02-28"
bank = "Bank of Beijing"
"""


@click.group()
@click.option("--json", "as_json", is_flag=True)
@click.option("--config", "config_path")
@click.pass_context
def root(ctx: click.Context, as_json: bool, config_path: str | None) -> None:
    ctx.obj = SimpleNamespace(json=as_json, config_path=config_path)


root.add_command(cli.registry)
root.add_command(cli.journal)


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return self.runner.invoke(root, list(args), env={"SSCARD_DB_URL": self.url, **(env or {})})

    def json(self, *args: str) -> Any:
        result = self("--json", *args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def register(self) -> None:
        holder = self.tmp_path / "holder.toml"
        holder.write_text(HOLDER_TOML, encoding="utf-8")
        self.json("registry", "register", str(holder), "--card-id", CARD, "--active")


@pytest.fixture
def run(db_url: str, tmp_path: Path) -> Cli:
    return Cli(db_url, tmp_path)


def test_register_show_and_lose_a_card(run: Cli) -> None:
    run.register()
    shown = run.json("registry", "show", CARD.lower())
    assert shown["card"]["card_id"] == CARD and shown["card"]["bank"] == "BOB"
    assert shown["card"]["ssn"] == "110102***********8" and shown["card"]["status"] == "active"
    assert shown["decision"]["allowed"] is True and shown["decision"]["reason"] == "card_ok"
    lost = run.json("registry", "report-loss", CARD, "--operator", "op-7", "--terminal", "T-7")
    assert lost["card"]["status"] == "temp_lost" and lost["card"]["temp_loss_until"]
    check = run.json("registry", "check", CARD)["decision"]
    assert check["reason"] == "card_temporarily_lost" and set(check["suspended"]) == {"medical", "financial"}
    assert run.json("registry", "report-loss", CARD, "--formal")["card"]["status"] == "lost"
    decision = run.json("registry", "show", CARD)["decision"]
    assert decision["allowed"] is False and decision["block_on_card"] is True
    assert decision["national_code"] == "-1161"
    history = run.json("registry", "history", CARD)["events"]
    assert [e["event"] for e in history] == ["register_card", "report_loss_temporary", "report_loss_formal"]
    assert history[1]["operator"] == "op-7" and history[1]["terminal"] == "T-7"


def test_replace_cancel_and_change_bank(run: Cli) -> None:
    run.register()
    run.json("registry", "report-loss", CARD, "--formal")
    new_card = [
        "--new-card-id",
        NEW_CARD,
        "--card-number",
        "X00000020",
        "--issue-date",
        "2025-06-01",
        "--expiry-date",
        "2035-05-31",
    ]
    replaced = run.json("registry", "replace", CARD, *new_card)
    assert replaced["card"]["card_id"] == NEW_CARD and replaced["card"]["replaces"] == CARD
    refused = run("--json", "registry", "release", CARD)
    assert refused.exit_code == 10 and refused.stdout == ""
    assert json.loads(refused.stderr)["error"] == "replaced_card_release_refused"
    run.json("registry", "activate", NEW_CARD)
    third = "110102D156000005" + "0000000000000021"
    changed = run.json(
        "registry",
        "change-bank",
        NEW_CARD,
        "--bank",
        "工商银行",
        "--new-card-id",
        third,
        "--card-number",
        "X00000021",
        "--issue-date",
        "2025-07-01",
        "--expiry-date",
        "2035-06-30",
    )
    assert changed["card"]["bank"] == "ICBC"
    run.json("registry", "activate", third)
    before = run("--json", "registry", "cancel", third, "--financial")
    assert before.exit_code == 10
    assert json.loads(before.stderr)["error"] == "financial_cancel_before_social_security"
    assert run.json("registry", "cancel", third)["card"]["status"] == "ss_cancelled"
    assert run.json("registry", "cancel", third, "--financial")["card"]["status"] == "cancelled"


def test_errors_follow_the_contract(run: Cli) -> None:
    run.register()
    refused = run("--json", "registry", "release", CARD)
    assert refused.exit_code == 10 and refused.stdout == ""
    body = json.loads(refused.stderr)
    assert body["error"] == "card_not_lost" and body["national_code"] == "-1126" and "正常" in body["message"]
    bad = run("--json", "registry", "show", "1234")
    assert bad.exit_code == 1 and json.loads(bad.stderr)["error"] == "card_id_invalid"
    unknown = run("registry", "show", "110102D156000005" + "0" * 16)
    assert unknown.exit_code == 10 and "登记库中无此卡" in unknown.stderr and unknown.stdout == ""
    partial = run("--json", "registry", "activate", CARD, "--agent-name", "李四")
    assert partial.exit_code == 1 and json.loads(partial.stderr)["error"] == "actor_invalid"
    agent = ["--agent-name", "李四", "--agent-id", "110102198001010778", "--agent-authorisation", "WT-1"]
    formal = run("--json", "registry", "report-loss", CARD, "--formal", *agent)
    assert formal.exit_code == 10 and json.loads(formal.stderr)["error"] == "agent_not_permitted"
    assert run.json("registry", "report-loss", CARD, *agent)["card"]["status"] == "temp_lost"
    events = run.json("registry", "history", CARD)["events"]
    assert events[-1]["agent"] == "李四 (110102***********8; WT-1)"


def test_human_output(run: Cli) -> None:
    run.register()
    shown = run("registry", "show", CARD)
    assert shown.exit_code == 0 and "正常" in shown.stdout and "110102***********8" in shown.stdout
    assert SSN not in shown.stdout
    listing = run("journal", "list", "--card", CARD)
    assert listing.exit_code == 0 and "registry.register_card" in listing.stdout


def test_journal_list_show_export_resolve(run: Cli) -> None:
    run.register()
    from terminal.registry import open_registry

    registry, journal = open_registry(run.url)
    try:
        entry_id = journal.begin("pin_change", card_id=CARD, terminal="T-9", operator="op-9")
    finally:
        registry.close()
    listed = run.json("journal", "list", "--card", CARD)
    assert [e["operation"] for e in listed["entries"]] == ["registry.register_card", "pin_change"]
    assert run.json("journal", "list", "--incomplete")["entries"][0]["id"] == entry_id
    assert run.json("journal", "list", "--terminal", "T-9", "--limit", "5")["count"] == 1
    assert run.json("journal", "show", str(entry_id))["entry"]["state"] == "open"
    resolved = run.json(
        "journal",
        "resolve",
        str(entry_id),
        "--resolution",
        "pin_state_read",
        "--result",
        "failed",
        "--note",
        "card pulled",
    )
    assert resolved["entry"]["state"] == "resolved"
    assert run.json("journal", "list", "--incomplete")["count"] == 0

    exported = run("journal", "export", "--format", "csv", "--card", CARD)
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["operation"] for r in rows] == ["registry.register_card", "pin_change"]
    document = json.loads(run("journal", "export", "--format", "json", "--terminal", "T-9").stdout)
    assert document["count"] == 1 and document["entries"][0]["resolution"] == "pin_state_read"
    wrapped = run.json("journal", "export", "--format", "csv")
    assert wrapped["format"] == "csv" and wrapped["content"].startswith("id,")
    out = run.tmp_path / "journal.csv"
    written = run.json("journal", "export", "--format", "csv", "--since", "2000-01-01", "--out", str(out))
    assert written == {"written": str(out), "format": "csv", "count": 3}
    assert out.read_text(encoding="utf-8").startswith("id,begun_at")
    missing = run("--json", "journal", "show", "999999")
    assert missing.exit_code == 10 and json.loads(missing.stderr)["error"] == "journal_entry_not_found"


def test_database_from_option_and_config(run: Cli, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    config = tmp_path / "sscard.toml"
    config.write_text(f'[registry]\nurl = "{other}"\n', encoding="utf-8")
    run.register()
    assert run.json("registry", "--db", other, "check", CARD)["decision"]["known"] is False
    from_config = run.runner.invoke(
        root, ["--json", "--config", str(config), "registry", "check", CARD], env={"SSCARD_DB_URL": None}
    )
    assert from_config.exit_code == 0 and json.loads(from_config.stdout)["decision"]["known"] is False
    assert run.json("registry", "check", CARD)["decision"]["known"] is True  # $SSCARD_DB_URL wins over config
    config.write_text("[registry\n", encoding="utf-8")
    broken = run.runner.invoke(
        root, ["--json", "--config", str(config), "registry", "check", CARD], env={"SSCARD_DB_URL": None}
    )
    assert broken.exit_code == 1 and json.loads(broken.stderr)["error"] == "registry_invalid_input"

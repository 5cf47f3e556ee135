"""``sscard issue`` / ``sscard replace`` over pcscd + vpcd (slot 0 the card,
slot 1 the PSAM, slot 2 the old card): JSON output, exit codes, resumption."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from click.testing import CliRunner, Result
from issuance_helpers import ACTOR
from issuance_pcsc import CARD_SLOT, PSAM_SLOT

from card_model.demo import demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal.cli import cli
from terminal.keysource import PsamKeySource
from terminal.registry import Journal, Registry

Insert = Callable[..., AbstractContextManager[VpcdLink]]
Opened = tuple[Registry, Journal]
HOLDER = """
[holder]
ssn = "110102197305211008"
name = "张三"
gender = "1"
ethnicity = "01"
birthplace = "110102"
birth_date = "1973-05-21"

[card]
card_number = "{number}"
region_code = "110102"
issue_date = "2025-06-01"
expiry_date = "2035-05-31"
bank = "Bank of Beijing"
"""


def _run(args: Sequence[str]) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _base(stack: PcscStack, db: str) -> list[str]:
    return [
        "--json",
        "--reader",
        stack.reader_for_slot(CARD_SLOT),
        "--psam-reader",
        stack.reader_for_slot(PSAM_SLOT),
        "--key-source",
        "psam",
        "--db",
        db,
        "--operator",
        ACTOR.operator,
        "--terminal",
        ACTOR.terminal,
    ]


def test_issue_inspect_and_replace_from_the_command_line(
    pcsc_stack: PcscStack, insert: Insert, psam_in_slot: PsamKeySource, registry: Opened, tmp_path: Path
) -> None:
    reg, _ = registry
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    holder = tmp_path / "holder.toml"
    holder.write_text(HOLDER.format(number="X00000061"), encoding="utf-8")
    plan = FaultPlan()
    card = FaultyCard(CardOS(demo_stock_card_image(80)), plan)
    plan.arm(Fault.of("tear_after", ins=0xDC, nth=4))
    with insert(card):
        torn = _run(["issue", "--holder", str(holder), *_base(pcsc_stack, db)])
        assert torn.exit_code == 4, torn.stderr
        assert json.loads(torn.stderr.strip().splitlines()[-1])["error"] == "card_removed_torn"
    with insert(card):
        shown = _run(
            ["issue", "--inspect", "--json", "--reader", pcsc_stack.reader_for_slot(CARD_SLOT), "--db", db]
        )
        assert shown.exit_code == 0, shown.stderr
        assert json.loads(shown.stdout)["life_cycle"] == "blank"
        done = _run(["issue", "--holder", str(holder), "--activate", *_base(pcsc_stack, db)])
        assert done.exit_code == 0, done.stderr
        answer = json.loads(done.stdout)
        assert (
            answer["resumed"] is True
            and answer["life_cycle"] == "active"
            and answer["registry_status"] == "active"
        )
        again = _run(["issue", "--holder", str(holder), *_base(pcsc_stack, db)])
        assert (
            again.exit_code == 10
            and json.loads(again.stderr.strip().splitlines()[-1])["error"] == "card_not_blank"
        )
    first_id = answer["card_id"]
    reg.report_loss_formal(first_id, ACTOR)
    replacement = tmp_path / "replacement.toml"
    replacement.write_text(HOLDER.format(number="X00000062"), encoding="utf-8")
    new_card = CardOS(demo_stock_card_image(81))
    with insert(new_card):
        missing = _run(["replace", first_id, *_base(pcsc_stack, db)])
        assert missing.exit_code == 2
        replaced = _run(
            ["replace", first_id, "--holder", str(replacement), "--reason", "lost", *_base(pcsc_stack, db)]
        )
        assert replaced.exit_code == 0, replaced.stderr
        assert json.loads(replaced.stdout)["replaces"] == first_id
        text = _run(["issue", "--inspect", "--reader", pcsc_stack.reader_for_slot(CARD_SLOT), "--db", db])
        assert "生命周期 Life cycle: personalised" in text.stdout
    assert new_card.image.life_cycle is LifeCycle.PERSONALISED
    assert reg.card(first_id).status == "replaced"
    # the old card is refused from now on (the registry check at every presentation)
    with insert(card):
        refused = CliRunner(env={"SSCARD_DB_URL": db}).invoke(
            cli,
            [
                "read",
                "basic",
                "--json",
                "--journal",
                "registry",
                "--reader",
                pcsc_stack.reader_for_slot(CARD_SLOT),
            ],
            catch_exceptions=False,
        )
        assert refused.exit_code == 10, refused.stderr
        body = json.loads(refused.stderr.strip().splitlines()[-1])
        assert body["error"] == "card_refused_by_registry" and body["national_code"] == "-1162", body
    assert reg.card(first_id).status == "replaced"

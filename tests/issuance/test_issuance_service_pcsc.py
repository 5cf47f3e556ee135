"""The issuance endpoints of the local service over the real PC/SC backend
(pcscd + vpcd, the service's own ``PcscBackend``): the blank card in slot 0,
the PSAM in slot 1 opened by the service itself, the registry journal in a
temporary SQLite file.  A card issued and activated through the service then
serves the read, authenticity, wallet and park ticket verbs; a tear during
issuance through the service is resumed by the next ``/issue``; a
replacement marks the old card replaced; a half-personalised card of
another order is refused and scrapped with ``sscard issue --scrap``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from issuance_helpers import ACTOR, order_for
from issuance_pcsc import CARD_SLOT, PSAM_SLOT, inserted

from card_model.demo import demo_ca, demo_psam_image, demo_stock_card_image
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from terminal.cli import cli
from terminal.registry import open_registry
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.tokens import AccessToken

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "issuance-pcsc-token-" + "z" * 30
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SSN = "110102197305211008"


class Counter:
    """The service under test, as a counter page reaches it."""

    def __init__(self, client: TestClient, db: str, card_reader: str, psam_reader: str) -> None:
        self.client = client
        self.db = db
        self.card_reader = card_reader
        self.psam_reader = psam_reader

    def post(self, path: str, **body: Any) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers=AUTH)


@pytest.fixture
def counter(pcsc_stack: PcscStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("SSCARD_DB_URL", db)
    monkeypatch.setenv("SSCARD_DATA_DIR", str(tmp_path / "data"))
    anchor = tmp_path / "ca.pem"
    anchor.write_bytes(demo_ca().certificate.to_pem())
    card_reader = pcsc_stack.reader_for_slot(CARD_SLOT)
    psam_reader = pcsc_stack.reader_for_slot(PSAM_SLOT)
    config = config_from_mapping(
        {
            "service": {
                "token_file": str(tmp_path / "token"),
                "card_wait_seconds": 10.0,
                "queue_wait_seconds": 10.0,
            },
            "readers": {"card": card_reader, "psam": psam_reader},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": ACTOR.terminal, "trust_anchors": [str(anchor)]},
            "journal": {"kind": "registry", "operator": ACTOR.operator},
        }
    )
    with inserted(PsamCard(demo_psam_image()), PSAM_SLOT, psam_reader):
        app = create_app(config, token=AccessToken(TOKEN, tmp_path / "token"))
        with TestClient(app, base_url="http://127.0.0.1:18080", client=("127.0.0.1", 40331)) as client:
            yield Counter(client, db, card_reader, psam_reader)


def _order_body(holder: str = "gen3", **card: str) -> dict[str, Any]:
    order = order_for(holder, **card)
    return {"holder": order.holder.to_mapping(), "card": order.public_dict()}


def test_issue_over_pcsc_then_every_verb_on_the_new_card(counter: Counter) -> None:
    with inserted(CardOS(demo_stock_card_image(61)), CARD_SLOT, counter.card_reader):
        progress = counter.post("/issuance/inspect")
        assert progress.status_code == 200, progress.json()
        assert progress.json()["life_cycle"] == "blank" and progress.json()["loaded_roles"] == ["KTK"]
        issued = counter.post("/issuance/issue", **_order_body(card_number="X00000061"), activate=True)
        assert issued.status_code == 200, issued.json()
        answer = issued.json()
        assert answer["life_cycle"] == "active" and answer["registry_status"] == "active"
        assert answer["steps_run"] == 28 and not answer["resumed"]
        holder = counter.post("/card/holder").json()
        assert holder["ssn"] == SSN and holder["name"] == "张三"
        assert counter.post("/card/authenticate").json()["genuine"] is True
        assert counter.post("/wallet/load", amount="50").json()["balance_fen"] == 5_000
        paid = counter.post("/wallet/purchase", amount="2.40").json()
        assert paid["balance_fen"] == 4_760 and paid["tac_verified"] is True
        records = counter.post("/wallet/records").json()["records"]
        assert [(r["type"], r["amount_fen"]) for r in records] == [("purchase", 240), ("load", 5_000)]
        sold = counter.post("/ticket/buy").json()
        assert counter.post("/ticket/show", date=f"{sold['year']}-07-01").json()["valid"] is True
        # the bank personalises the financial application, not the issuing terminal
        bank = counter.post("/bankcard")
        assert bank.status_code == 409 and bank.json()["error"] == "bank_card_not_available"
        again = counter.post("/issuance/issue", **_order_body(card_number="X00000061"))
        assert again.status_code == 409 and again.json()["error"] == "card_not_blank"
    registry, journal = open_registry(counter.db)
    try:
        assert registry.card(answer["card_id"]).status == "active"
        assert journal.incomplete(answer["card_id"]) == []
        entries = journal.query(card_id=answer["card_id"], operation="card.issue")
        # the issuance, and the second order refused before any write
        assert sorted(str(e.result) for e in entries) == ["ok", "refused"]
    finally:
        registry.close()


def test_a_tear_during_issuance_is_resumed_by_the_next_request(counter: Counter) -> None:
    plan = FaultPlan()
    card = FaultyCard(CardOS(demo_stock_card_image(62)), plan)
    body = _order_body(card_number="X00000062")
    plan.arm(Fault.of("tear_after", ins=0xDC, nth=3))  # a record written, the answer lost
    with inserted(card, CARD_SLOT, counter.card_reader):
        torn = counter.post("/issuance/issue", **body)
        assert plan.fired
        assert torn.status_code == 409 and torn.json()["error"] == "card_removed_torn", torn.json()
    with inserted(card, CARD_SLOT, counter.card_reader):
        progress = counter.post("/issuance/inspect").json()
        assert progress["life_cycle"] == "blank" and not progress["records_complete"]
        resumed = counter.post("/issuance/issue", **body)
        assert resumed.status_code == 200, resumed.json()
        assert resumed.json()["resumed"] is True and resumed.json()["life_cycle"] == "personalised"
        assert resumed.json()["steps_skipped"] >= 12
        assert counter.post("/card/holder").json()["ssn"] == SSN
    registry, journal = open_registry(counter.db)
    try:
        card_id = resumed.json()["card_id"]
        assert journal.incomplete(card_id) == []
        steps = journal.query(card_id=card_id, operation="card.issue.step")
        assert any(e.resolution == "card_state_applied" for e in steps)
    finally:
        registry.close()


def test_replacement_over_pcsc(counter: Counter) -> None:
    old_id = "110102D1560000051342A7D2CDFACC19"
    registry, _ = open_registry(counter.db)
    try:
        registry.register_holder(SSN, "张三", gender="1", birth_date="1973-05-21")
        registry.register_card(
            old_id, "X00000019", SSN, 3, "Bank of Beijing", "2025-03-01", "2035-02-28", "active"
        )
        registry.report_loss_temporary(old_id, ACTOR)
    finally:
        registry.close()
    body = _order_body(card_number="X00000063")
    with inserted(CardOS(demo_stock_card_image(63)), CARD_SLOT, counter.card_reader):
        early = counter.post("/issuance/replace", **body, old_card_id=old_id)
        assert early.status_code == 409  # a temporary loss report is not enough: formal first
        assert counter.post("/issuance/inspect").json()["loaded_roles"] == ["KTK"]
        registry, _ = open_registry(counter.db)
        try:
            registry.report_loss_formal(old_id, ACTOR)
        finally:
            registry.close()
        replaced = counter.post("/issuance/replace", **body, old_card_id=old_id, reason="lost")
        assert replaced.status_code == 200, replaced.json()
        assert replaced.json()["replaces"] == old_id and replaced.json()["operation"] == "replace"
    registry, _ = open_registry(counter.db)
    try:
        assert registry.card(old_id).status == "replaced"
        assert registry.card(old_id).replaced_by == replaced.json()["card_id"]
        assert not registry.check_presented(old_id).allowed
    finally:
        registry.close()


def test_a_conflicting_order_is_refused_and_the_card_scrapped(counter: Counter) -> None:
    """A card torn after some of one holder's key items were written: the
    service refuses another holder's order on it, ``sscard issue --scrap``
    takes it out of use over the same PC/SC readers, and the service then
    sees a scrapped card it refuses to issue."""
    plan = FaultPlan()
    card = FaultyCard(CardOS(demo_stock_card_image(64)), plan)
    plan.arm(Fault.of("tear_after", ins=0xDC, nth=5))  # EF05 facts and an EF06 key item written
    with inserted(card, CARD_SLOT, counter.card_reader):
        counter.post("/issuance/issue", **_order_body(card_number="X00000064"))
        assert plan.fired
    other = _order_body("x_long_name", card_number="X00000065")
    with inserted(card, CARD_SLOT, counter.card_reader):
        refused = counter.post("/issuance/issue", **other)
        assert refused.status_code == 409 and refused.json()["error"] == "issuance_conflict", refused.json()
        scrapped = CliRunner().invoke(
            cli,
            [
                "issue",
                "--scrap",
                "--json",
                "--reader",
                counter.card_reader,
                "--psam-reader",
                counter.psam_reader,
                "--key-source",
                "psam",
                "--db",
                counter.db,
            ],
            catch_exceptions=False,
        )
        assert scrapped.exit_code == 0, scrapped.stderr
        assert json.loads(scrapped.stdout)["life_cycle"] == "permanently_blocked"
        assert counter.post("/issuance/inspect").json()["life_cycle"] == "permanently_blocked"
        again = counter.post("/issuance/issue", **_order_body(card_number="X00000064"))
        assert again.status_code == 409 and again.json()["error"] == "card_not_blank"

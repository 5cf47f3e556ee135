"""The wallet, park ticket and bank card endpoints of the local service over
the real PC/SC backend (pcscd + vpcd, the service's own ``PcscBackend``; slot
8 the card, slot 9 the PSAM the service opens itself), with the registry
journal: answers, refusals, a purchase torn after the card debited that the
next verb settles from the card, and the ``sscard`` console script run as a
process against the same readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wallet_helpers import Slot, active_card

from card_model.demo import demo_psam_image
from card_model.purse import PurseState
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from terminal.registry import open_registry
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.tokens import AccessToken

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.pcsc

CARD_SLOT, PSAM_SLOT = 8, 9
TOKEN = "wallet-pcsc-token-" + "w" * 30
ROOT = Path(__file__).resolve().parents[2]


class Counter:
    def __init__(self, client: TestClient, db: str, card: Slot, psam_reader: str) -> None:
        self.client = client
        self.db = db
        self.card = card
        self.psam_reader = psam_reader

    def post(self, path: str, **body: Any) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def counter(pcsc_stack: PcscStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("SSCARD_DB_URL", db)
    monkeypatch.setenv("SSCARD_DATA_DIR", str(tmp_path / "data"))
    psam = Slot(PSAM_SLOT, pcsc_stack.reader_for_slot(PSAM_SLOT))
    card = Slot(CARD_SLOT, pcsc_stack.reader_for_slot(CARD_SLOT))
    config = config_from_mapping(
        {
            "service": {
                "token_file": str(tmp_path / "token"),
                "card_wait_seconds": 10.0,
                "queue_wait_seconds": 10.0,
            },
            "readers": {"card": card.reader, "psam": psam.reader},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": "T-WALLET-PCSC"},
            "journal": {"kind": "registry", "operator": "op-wallet"},
        },
        source="<wallet pcsc test>",
    )
    psam.insert(PsamCard(demo_psam_image()))
    try:
        app = create_app(config, token=AccessToken(TOKEN, tmp_path / "token"))
        with TestClient(app, base_url="http://127.0.0.1:18080", client=("127.0.0.1", 40998)) as client:
            yield Counter(client, db, card, psam.reader)
    finally:
        card.remove()
        psam.remove()


def _state(card: CardOS) -> PurseState:
    spec = card.profile.applications.purse
    assert spec is not None
    return PurseState.from_bytes(bytes(card.image.binary_files[spec.state_fid].content))


def test_wallet_ticket_and_bank_card_over_the_service(counter: Counter) -> None:
    counter.card.insert(active_card())
    balance = counter.post("/wallet/balance")
    assert balance.status_code == 200, balance.json()
    assert balance.json() == {
        "balance": "0.00",
        "balance_fen": 0,
        "limit": "1000.00",
        "limit_fen": 100_000,
        "label": "交通钱包",
    }
    loaded = counter.post("/wallet/load", amount="100.00").json()
    assert loaded["balance_fen"] == 10_000 and loaded["tac_verified"] is True and loaded["journal_entry"]
    paid = counter.post("/wallet/purchase", amount="3.5").json()
    assert paid["balance"] == "96.50" and paid["counter"] == 0
    over = counter.post("/wallet/load", amount="903.51")
    assert over.status_code == 409 and over.json()["error"] == "balance_limit_exceeded"
    short = counter.post("/wallet/purchase", amount="96.51")
    assert short.status_code == 409 and short.json()["error"] == "insufficient_balance"
    for bad in ("0", "-1", "0.001", "1e3"):
        refused = counter.post("/wallet/load", amount=bad)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_amount", bad
    assert counter.post("/wallet/load", amount=12.5).status_code == 422  # no JSON numbers for money
    records = counter.post("/wallet/records").json()
    assert records["balance_fen"] == 9_650
    assert [(r["type"], r["amount_fen"]) for r in records["records"]] == [("purchase", 350), ("load", 10_000)]
    sold = counter.post("/ticket/buy").json()
    second = counter.post("/ticket/buy", year=sold["year"])
    assert second.status_code == 409 and second.json()["national_code"] == "-1710"
    gate = counter.post("/ticket/show", date=f"{sold['year']}-12-31").json()
    assert gate["present"] is True and gate["valid"] is True
    assert counter.post("/ticket/show", date=f"{sold['year'] + 1}-01-01").json()["valid"] is False
    bank = counter.post("/bankcard").json()
    assert bank["pan_masked"].startswith("629113******") and bank["source"] == "pse"
    _, journal = open_registry(counter.db)
    try:
        loads = journal.query(operation="wallet.load")
        # the load past the limit is journaled as refused; a malformed amount never reaches the card
        assert sorted(str(e.result) for e in loads) == ["ok", "refused"]
        purchases = journal.query(operation="wallet.purchase")
        assert sorted(str(e.result) for e in purchases) == ["ok", "refused"]
    finally:
        journal.close()


def test_a_torn_purchase_is_settled_by_the_next_verb(counter: Counter) -> None:
    card = CardOS(active_card().image)
    plan = FaultPlan()
    counter.card.insert(FaultyCard(card, plan))
    assert counter.post("/wallet/load", amount="20").status_code == 200
    before = _state(card)
    plan.arm(Fault.of("tear_after", ins=0x54))  # DEBIT FOR PURCHASE executed, the answer lost
    torn = counter.post("/wallet/purchase", amount="4")
    assert torn.status_code == 409 and torn.json()["error"] == "card_removed_torn"
    counter.card.reinsert()
    after = counter.post("/wallet/balance").json()
    assert after["balance_fen"] == before.balance - 400 == _state(card).balance
    assert _state(card).offline_counter == before.offline_counter + 1
    _, journal = open_registry(counter.db)
    try:
        (entry,) = [e for e in journal.query(operation="wallet.purchase") if e.state == "resolved"]
        assert entry.result == "ok" and entry.resolution == "card_state_applied"
        assert "TAC verified" in (entry.resolution_note or "")
        assert journal.incomplete(card.image.card_id.hex().upper()) == []
    finally:
        journal.close()


def test_the_sscard_console_script(counter: Counter, tmp_path: Path) -> None:
    counter.card.insert(active_card())
    env = {**os.environ, "SSCARD_DATA_DIR": str(tmp_path / "cli"), "SSCARD_DB_URL": counter.db}
    script = Path(sys.executable).with_name("sscard")

    def sscard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(script),
                "--json",
                "--reader",
                counter.card.reader,
                *args,
                "--psam-reader",
                counter.psam_reader,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    loaded = sscard("wallet", "load", "8.80", "--journal", "registry")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["balance"] == "8.80"
    refused = sscard("wallet", "purchase", "9")
    assert refused.returncode == 10 and json.loads(refused.stderr.strip().splitlines()[-1])["error"] == (
        "insufficient_balance"
    )

"""The wallet, park ticket and bank card endpoints of the local service, in
process (an in-process reader backend, the demo PSAM as the configured key
source, a memory journal): answers, error bodies and statuses, and a tear
settled by the next verb."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wallet_helpers import NthTear, active_card

from apdu.inprocess import InProcessTransport
from apdu.transport import Transport
from card_model.demo import demo_psam_image
from emulator.psam import PsamCard
from emulator.vpcd import VirtualCard
from terminal.journal_hook import MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.readers import ReaderInfo, classify
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.tokens import AccessToken
from terminal.watch import ReaderEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "wallet-test-token-" + "y" * 30
CARD_READER = "In-process wallet reader"
PSAM_READER = "In-process PSAM"


class Backend:
    """One card reader and one PSAM reader over card objects."""

    name = "inprocess"

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.psam = PsamCard(demo_psam_image())
        self.transports: list[InProcessTransport] = []

    def readers(self) -> list[ReaderInfo]:
        atr = self.card.atr()
        kind, source = classify(CARD_READER, atr)
        psam_kind, psam_source = classify(PSAM_READER, self.psam.atr())
        return [
            ReaderInfo(CARD_READER, kind, True, atr, source),
            ReaderInfo(PSAM_READER, psam_kind, True, self.psam.atr(), psam_source),
        ]

    def open_transport(self, reader: str) -> Transport:
        transport = InProcessTransport(self.card, reader=CARD_READER)
        self.transports.append(transport)
        if isinstance(self.card, NthTear):
            self.card.transport = transport  # a tear pulls the card from this verb's reader
        return transport

    def control_channel(self, transport: Transport) -> None:
        return None

    def open_psam(self, pattern: str) -> KeySource:
        return PsamKeySource(InProcessTransport(self.psam, reader=PSAM_READER))

    def start_watch(self, callback: Callable[[ReaderEvent], None]) -> None:
        return None

    def stop_watch(self) -> None:
        return None


class Service:
    def __init__(self, tmp: Path, card: VirtualCard) -> None:
        doc = {
            "service": {
                "token_file": str(tmp / "token"),
                "card_wait_seconds": 0.0,
                "queue_wait_seconds": 5.0,
            },
            "readers": {"card": CARD_READER, "psam": PSAM_READER},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": "T-WALLET-01"},
        }
        self.backend = Backend(card)
        self.journal = MemoryJournal()
        app = create_app(
            config_from_mapping(doc, source="<wallet test>"),
            backend=self.backend,  # type: ignore[arg-type]
            token=AccessToken(TOKEN, tmp / "token"),
            journal=self.journal,
        )
        self.client = TestClient(app, base_url="http://127.0.0.1:18080", client=("127.0.0.1", 40999))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/v1{path}", json=body or {}, headers={"Authorization": f"Bearer {TOKEN}"}
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path, active_card())
    with svc.client:
        yield svc


def test_wallet_endpoints(service: Service) -> None:
    answer = service.post("/wallet/load", {"amount": "20.00"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == "20.00" and answer.json()["tac_verified"] is True
    assert service.post("/wallet/purchase", {"amount": "3.5"}).json()["balance_fen"] == 1650
    assert service.post("/wallet/balance").json()["balance"] == "16.50"
    records = service.post("/wallet/records").json()["records"]
    assert [(r["type"], r["amount"]) for r in records] == [("purchase", "3.50"), ("load", "20.00")]
    refused = service.post("/wallet/purchase", {"amount": "100"})
    assert refused.status_code == 409 and refused.json()["error"] == "insufficient_balance"
    bad = service.post("/wallet/load", {"amount": "0"})
    assert bad.status_code == 400 and bad.json()["national_code"] == "-23"
    assert service.post("/wallet/load", {"amount": 12.5}).status_code == 422  # no floats for money
    assert service.post("/wallet/load", {}).status_code == 422
    unauthorised = service.client.post("/api/v1/wallet/balance", json={})
    assert unauthorised.status_code == 401


def test_ticket_and_bankcard_endpoints(service: Service) -> None:
    bought = service.post("/ticket/buy")
    assert bought.status_code == 200, bought.text
    year = bought.json()["year"]
    again = service.post("/ticket/buy", {"year": year})
    assert again.status_code == 409 and again.json()["error"] == "ticket_already_bought"
    shown = service.post("/ticket/show", {"date": f"{year}-07-01"}).json()
    assert shown["present"] and shown["valid"] and shown["year"] == year
    assert service.post("/ticket/show", {"date": f"{year + 1}-01-01"}).json()["valid"] is False
    bank = service.post("/bankcard").json()
    assert bank["pan_masked"].startswith("629113******") and bank["bank"] == "BOB"
    assert "pan" not in bank


def test_openapi_lists_the_wallet_routes(service: Service) -> None:
    paths = service.client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
        "paths"
    ]
    for route in (
        "/wallet/load",
        "/wallet/purchase",
        "/wallet/balance",
        "/wallet/records",
        "/ticket/buy",
        "/ticket/show",
        "/bankcard",
    ):
        assert f"/api/v1{route}" in paths


def test_a_torn_purchase_is_settled_by_the_next_verb(tmp_path: Path) -> None:
    wrapper = NthTear(active_card())
    svc = Service(tmp_path, wrapper)
    with svc.client:
        assert svc.post("/wallet/load", {"amount": "10"}).status_code == 200
        transports_before = len(svc.backend.transports)
        wrapper.arm(
            2 + 4, after=True
        )  # session SELECT + READ RECORD, then SELECT purse, GET BALANCE, INIT, DEBIT
        torn = svc.post("/wallet/purchase", {"amount": "4"})
        assert torn.status_code == 409 and torn.json()["error"] == "card_removed_torn"
        assert len(svc.backend.transports) == transports_before + 1
        balance = svc.post("/wallet/balance")
        assert balance.status_code == 200 and balance.json()["balance"] == "6.00"
        entry = svc.journal.last("wallet.purchase")
        assert entry.state == "resolved" and entry.resolution == "card_state_applied"
        assert "TAC verified" in (entry.resolution_note or "")

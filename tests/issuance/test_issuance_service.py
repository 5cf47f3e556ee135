"""The issuance endpoints of the local service (``/api/v1/issuance/...``) over an
in-process backend: a blank stock card and the demo PSAM, the registry in a
temporary SQLite file."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from issuance_helpers import ACTOR, order_for

from apdu.inprocess import InProcessTransport
from apdu.transport import Transport
from card_model.demo import demo_ca, demo_psam_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.readers import ReaderInfo, classify
from terminal.registry import open_registry
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.tokens import AccessToken
from terminal.watch import ReaderEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CARD_READER = "In-process issuance reader"
PSAM_READER = "In-process issuance PSAM"
TOKEN = "issuance-test-token-" + "y" * 30
BASE = "http://127.0.0.1:18080"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Backend:
    """One card reader (the blank card) and one PSAM reader, in process."""

    name = "inprocess"

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.psam = PsamCard(demo_psam_image())

    def readers(self) -> list[ReaderInfo]:
        kind, source = classify(CARD_READER, self.card.atr())
        psam_kind, psam_source = classify(PSAM_READER, self.psam.atr())
        return [
            ReaderInfo(CARD_READER, kind, True, self.card.atr(), source),
            ReaderInfo(PSAM_READER, psam_kind, True, self.psam.atr(), psam_source),
        ]

    def open_transport(self, reader: str) -> Transport:
        assert reader == CARD_READER
        return InProcessTransport(self.card, reader=CARD_READER)

    def control_channel(self, transport: Transport) -> None:
        return None

    def open_psam(self, pattern: str) -> KeySource:
        return PsamKeySource(InProcessTransport(self.psam, reader=PSAM_READER))

    def start_watch(self, callback: Callable[[ReaderEvent], None]) -> None:
        return None

    def stop_watch(self) -> None:
        return None


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, CardOS]]:
    monkeypatch.setenv("SSCARD_DB_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    anchor = tmp_path / "ca.pem"
    anchor.write_bytes(demo_ca().certificate.to_pem())
    config = config_from_mapping(
        {
            "service": {"token_file": str(tmp_path / "token"), "card_wait_seconds": 0.0},
            "readers": {"card": "issuance reader", "psam": "issuance PSAM"},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": "T-ISS-01", "trust_anchors": [str(anchor)]},
            "journal": {"kind": "none"},
        }
    )
    card = CardOS(demo_stock_card_image(70))
    app = create_app(config, backend=_Backend(card), token=AccessToken(TOKEN, tmp_path / "token"))
    with TestClient(app, base_url=BASE, client=("127.0.0.1", 40321)) as client:
        yield client, card


def _body(**extra: Any) -> dict[str, Any]:
    order = order_for()
    return {"holder": order.holder.to_mapping(), "card": order.public_dict(), **extra}


def test_inspect_issue_and_scrap_endpoints(service: tuple[TestClient, CardOS], tmp_path: Path) -> None:
    client, card = service
    assert client.post("/api/v1/issuance/inspect", json={}).status_code == 401
    progress = client.post("/api/v1/issuance/inspect", json={}, headers=AUTH)
    assert progress.status_code == 200 and progress.json()["life_cycle"] == "blank"
    bad = client.post("/api/v1/issuance/issue", json={**_body(), "card": {"card_number": "X1"}}, headers=AUTH)
    assert bad.status_code == 422
    issued = client.post("/api/v1/issuance/issue", json=_body(activate=True), headers=AUTH)
    assert issued.status_code == 200, issued.json()
    answer = issued.json()
    assert answer["life_cycle"] == "active" and answer["registry_status"] == "active"
    assert card.image.life_cycle is LifeCycle.ACTIVE
    again = client.post("/api/v1/issuance/issue", json=_body(), headers=AUTH)
    assert again.status_code >= 400 and again.json()["error"] == "card_not_blank"
    assert again.json()["national_code"] == "-1501"
    scrap = client.post("/api/v1/issuance/scrap", json={}, headers=AUTH)
    assert scrap.json()["error"] == "card_not_blank"
    registry, _ = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        assert registry.card(answer["card_id"]).status == "active"
    finally:
        registry.close()


def test_replace_endpoint(service: tuple[TestClient, CardOS], tmp_path: Path) -> None:
    client, _ = service
    registry, _ = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    old_id = "110102D1560000051342A7D2CDFACC19"
    try:
        registry.register_holder("110102197305211008", "张三")
        registry.register_card(
            old_id, "X00000019", "110102197305211008", 3, "BOB", "2025-03-01", "2035-02-28"
        )
        registry.report_loss_formal(old_id, ACTOR)
    finally:
        registry.close()
    body = _body(old_card_id=old_id, reason="lost")
    body["card"]["card_number"] = "X00000051"
    replaced = client.post("/api/v1/issuance/replace", json=body, headers=AUTH)
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["replaces"] == old_id and replaced.json()["operation"] == "replace"

"""The service with the card status registry (``journal.kind = "registry"``):
every card session passes the registry's presentation gate, over pcscd +
vpcd (slot 12 the card, 13 the demo PSAM) and a SQLite registry in the
test's temporary directory ($SSCARD_DB_URL).

A replaced card read through the native API answers 409 with the
registry's refusal and ends permanently blocked on the card; a card
formally reported lost answers the decision's national code through the
national drop-in and is blocked temporarily, then unblocked once the loss
is released; a card the registry does not know, or allows, works as
before."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from service_cards import (
    BASE,
    COUNTER_ORIGIN,
    LOOPBACK_CLIENT,
    NATIONAL_WS,
    SSN,
    TOKEN,
    auth,
    card_os,
    fields,
    settings,
)
from service_harness import Insert

with warnings.catch_warnings():
    # starlette.testclient warns that it prefers another HTTP client package; it works as is.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from emulator.vpcd import VpcdLink
from terminal.registry import Actor, Journal, NewCard, Registry, open_registry
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.pinentry import ScriptedPinEntry
from terminal.service.tokens import AccessToken

CLERK = Actor(operator="op-9", terminal="T-REG-9")
NEW_CARD_ID = "110102D156000005000000000000A020"


@dataclass
class RegistryService:
    """A service with the registry, and the test's own handle on that registry."""

    client: TestClient
    registry: Registry
    journal: Journal

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=body or {}, headers=auth())

    def national(self, function: str, **args: Any) -> dict[str, Any]:
        with self.client.websocket_connect(NATIONAL_WS, headers={"Origin": COUNTER_ORIGIN}) as ws:
            ws.send_json({"function": function, **args})
            answer: dict[str, Any] = ws.receive_json()
        return answer

    def card_operations(self, card_id: str) -> list[tuple[str, str]]:
        """(operation, result) of the card flows journaled for ``card_id``."""
        return [
            (e.operation, e.result)
            for e in self.journal.query(card_id=card_id)
            if not e.operation.startswith("registry.")
        ]


@pytest.fixture
def reg_service(
    tmp_path: Path, card_reader: str, psam_reader: str, psam: VpcdLink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryService]:
    monkeypatch.setenv("SSCARD_DB_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    doc = settings(tmp_path, card_reader, psam_reader, journal={"kind": "registry", "operator": "svc-clerk"})
    config = config_from_mapping(doc, source="<test>")
    app = create_app(config, pin_provider=ScriptedPinEntry(), token=AccessToken(TOKEN, tmp_path / "token"))
    registry, journal = open_registry()
    client = TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT)
    client.__enter__()
    try:
        yield RegistryService(client, registry, journal)
    finally:
        client.__exit__(None, None, None)
        registry.close()


def _register(service: RegistryService) -> str:
    card_id: str = service.post("/card/basic").json()["card_id"]
    service.registry.register_holder(SSN, "张三", gender="1", birth_date="1973-05-21")
    service.registry.register_card(card_id, "X00000019", SSN, 3, "BOB", "2025-03-01", "2035-02-28", "active")
    return card_id


def _life_cycle(service: RegistryService) -> str:
    status = service.post("/card/status", {"key_counters": False})
    assert status.status_code == 200, status.text
    life_cycle: str = status.json()["life_cycle"]
    return life_cycle


def test_native_read_of_a_replaced_card_is_refused_and_blocked_for_good(
    reg_service: RegistryService, insert: Insert
) -> None:
    with insert(card_os(3)):
        card_id = _register(reg_service)
        reg_service.registry.report_loss_formal(card_id, CLERK)
        new_card = NewCard(NEW_CARD_ID, "X00000020", 3, "2025-06-01", "2035-05-31")
        reg_service.registry.replace(card_id, new_card, CLERK)
        decision = reg_service.registry.check_presented(card_id)
        assert decision.reason_id == "card_replaced" and not decision.allowed
        answer = reg_service.post("/card/holder")
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["error"] == "card_refused" and body["reason"] == "card_replaced"
        assert body["national_code"] == str(decision.national_code) and body["blocked"] is True
        assert SSN not in answer.text
        # status queries still run on a refused card: the block is on the card, for good
        assert _life_cycle(reg_service) == "permanently_blocked"
        assert reg_service.post("/card/basic").status_code == 409
    operations = reg_service.card_operations(card_id)
    assert operations[-7:] == [
        ("card.present", "refused"),
        ("card.block", "ok"),
        ("card.read_holder", "refused"),
        ("card.present", "refused"),
        ("card.status", "ok"),
        ("card.present", "refused"),
        ("card.read_basic", "refused"),
    ]
    block = [e for e in reg_service.journal.query(card_id=card_id) if e.operation == "card.block"]
    assert block[0].details["reason"] == "card_replaced" and block[0].operator == "svc-clerk"
    assert block[0].terminal == "T-SVC-01"


def test_national_read_of_a_lost_card_answers_the_decision_code(
    reg_service: RegistryService, insert: Insert
) -> None:
    with insert(card_os(3)):
        card_id = _register(reg_service)
        before = _life_cycle(reg_service)
        reg_service.registry.report_loss_formal(card_id, CLERK)
        decision = reg_service.registry.check_presented(card_id)
        answer = reg_service.national("iReadCardBas", iType=3)
        assert answer["success"] == decision.national_code == -1161, answer
        assert answer["pOutInfo"] == ""
        assert _life_cycle(reg_service) == "temporarily_blocked"
        # the loss is released: the next presentation unblocks the card
        reg_service.registry.release_loss(card_id, CLERK)
        again = reg_service.national("iReadCardBas", iType=3)
        assert again["success"] == 0, again
        assert fields(again["pOutInfo"])[1] == SSN
        assert _life_cycle(reg_service) == before
    operations = reg_service.card_operations(card_id)
    refused = operations.index(("card.present", "refused"))
    # iReadCardBas is read_basic (+ read_holder): refused at its first flow
    assert operations[refused : refused + 3] == [
        ("card.present", "refused"),
        ("card.block", "ok"),
        ("card.read_basic", "refused"),
    ]
    assert ("card.unblock", "ok") in operations


def test_unknown_and_allowed_cards_work_as_before(reg_service: RegistryService, insert: Insert) -> None:
    with insert(card_os(3)):
        basic = reg_service.post("/card/basic")
        assert basic.status_code == 200, basic.text
        card_id = basic.json()["card_id"]
        assert reg_service.registry.check_presented(card_id).reason_id == "card_not_registered"
        _register(reg_service)
        holder = reg_service.post("/card/holder")
        assert holder.status_code == 200 and holder.json()["ssn"] == SSN
        answer = reg_service.national("iReadCardBas", iType=3)
        assert answer["success"] == 0 and fields(answer["pOutInfo"])[1] == SSN
        assert _life_cycle(reg_service) == "personalised"
    operations = reg_service.card_operations(card_id)
    assert ("card.present", "refused") not in operations
    assert operations.count(("card.read_holder", "ok")) == 2  # /card/holder and iReadCardBas
    assert not [op for op, _ in operations if op in ("card.block", "card.unblock")]

"""The native JSON API end to end: every endpoint and its errors over pcscd +
vpcd (card in slot 12, the demo PSAM in slot 13 as key source), in process
through the ASGI app."""

from __future__ import annotations

import threading
import time
from typing import Any

from service_cards import (
    INITIAL_PIN,
    NEW_PIN,
    OTHER_PIN,
    SSN,
    WRONG_PIN,
    ForeignCard,
    PullingCard,
    card_os,
    fields,
)
from service_harness import Insert, MakeService, Service

from apdu.errors import PinEntryError
from card_model.lifecycle import LifeCycle


def error(response: Any, status: int, code: int, error_id: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    # interfaces.md: codes as strings (the national drop-in's "success" alone is a number)
    assert body["national_code"] == str(code), body
    assert body["message"] and body["message_en"]
    if error_id is not None:
        assert body["error"] == error_id, body
    return body


# -- service ------------------------------------------------------------------------------------


def test_version_handshake_and_health(
    svc: Service, insert: Insert, card_reader: str, psam_reader: str
) -> None:
    version = svc.get("/version")
    assert version.status_code == 200 and version.json()["api_version"] == "1.0"
    assert version.headers["x-sscard-api-version"] == "1.0"
    assert {"pin.verify", "events", "national.websocket", "national.debit", "kiosk"} <= set(
        version.json()["features"]
    )

    ok = svc.post(
        "/handshake", {"client": "counter", "api_version": "1.0", "features": ["card.basic"]}
    ).json()
    assert ok["compatible"] is True and ok["missing_features"] == []
    old = svc.post("/handshake", {"api_version": "1.3"}).json()
    assert old["compatible"] is False and "版本过低" in old["message"]
    newer = svc.post("/handshake", {"api_version": "0.9"}).json()
    assert newer["compatible"] is False and "不兼容" in newer["message"]
    missing = svc.post("/handshake", {"api_version": "1.0", "features": ["card.teleport"]}).json()
    assert missing["compatible"] is False and missing["missing_features"] == ["card.teleport"]
    error(svc.post("/handshake", {"api_version": "one"}), 422, -14, "invalid_request")

    error(svc.get("/version", headers={"X-Sscard-Api-Version": "1.4"}), 400, -1309, "api_version_unsupported")
    assert svc.get("/version", headers={"X-Sscard-Api-Version": "1.0"}).status_code == 200

    with insert(card_os(3)):
        health = svc.get("/health").json()
    assert health["status"] == "ok" and health["pcscd"] == {"reachable": True, "error": None}
    assert health["key_source"]["kind"] == "psam" and health["key_source"]["present"] is True
    assert health["terminal"] == {
        "zdbm": "T-SVC-01",
        "terminal_number": "110102000001",
        "device_number": "DEV-0001",
    }
    assert health["ports"] == {"http": 18080, "national": 18081}
    assert {"python", "sscard", "fastapi", "uvicorn", "pyscard"} <= set(health["versions"])
    by_name = {r["name"]: r for r in health["readers"]}
    assert by_name[card_reader]["card_kind"] == "social_security" and by_name[card_reader]["card_present"]
    assert by_name[psam_reader]["kind"] == "psam" and by_name[psam_reader]["card_kind"] == "psam"


def test_readers(svc: Service, insert: Insert, card_reader: str) -> None:
    empty = {r["name"]: r for r in svc.get("/readers").json()["readers"]}
    assert empty[card_reader]["card_present"] is False and empty[card_reader]["card_kind"] is None
    with insert(ForeignCard()):
        foreign = {r["name"]: r for r in svc.get("/readers").json()["readers"]}
    assert foreign[card_reader]["card_kind"] == "other" and foreign[card_reader]["kind"] == "contactless"


def test_openapi_document(svc: Service) -> None:
    assert svc.client.get("/api/v1/openapi.json").status_code == 401
    doc = svc.get("/openapi.json").json()
    assert doc["info"]["title"] == "sscard local service"
    paths = set(doc["paths"])
    expected = {
        "/api/v1/version",
        "/api/v1/handshake",
        "/api/v1/health",
        "/api/v1/readers",
        "/api/v1/card/basic",
        "/api/v1/card/holder",
        "/api/v1/card/national",
        "/api/v1/card/authenticate",
        "/api/v1/card/status",
        "/api/v1/card/read",
        "/api/v1/card/write",
        "/api/v1/card/activate",
        "/api/v1/card/block",
        "/api/v1/card/unblock",
        "/api/v1/pin/status",
        "/api/v1/pin/verify",
        "/api/v1/pin/change",
        "/api/v1/pin/reset",
        "/api/v1/pin/unblock",
        "/api/v1/issuance/issue",
        "/api/v1/issuance/replace",
        "/api/v1/issuance/inspect",
        "/api/v1/issuance/scrap",
        "/api/v1/wallet/balance",
        "/api/v1/wallet/load",
        "/api/v1/wallet/purchase",
        "/api/v1/wallet/records",
        "/api/v1/ticket/buy",
        "/api/v1/ticket/show",
        "/api/v1/bankcard",
    }
    assert paths == expected
    assert not any("apdu" in p for p in paths)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # PINs are body fields only, never parameters.
    for item in doc["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                assert "pin" not in parameter["name"].lower()


# -- reading ------------------------------------------------------------------------------------


def test_read_verbs(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        basic = svc.post("/card/basic").json()
        assert basic["generation"] == 3 and basic["card_number"] == "X00000019"
        assert basic["issue_date"] == "2025-03-01" and basic["card_id"].startswith("110102D156000005")
        holder = svc.post("/card/holder", {"itype": 1}).json()
        assert holder["ssn"] == SSN and holder["name"] == "张三" and holder["ethnicity_text"] == "汉族"
        national = svc.post("/card/national").json()
        parts = fields(national["pOutInfo"])
        assert parts == national["fields"] and parts[1] == SSN and parts[4] == "张三"
        assert parts[9] == "110102000001" and parts[10] == "DEV-0001"
        genuine = svc.post("/card/authenticate").json()
        assert genuine["genuine"] is True and genuine["sm2"] is True
        status = svc.post("/card/status").json()
        assert status["life_cycle"] == "personalised" and status["pin"]["state"] == "initial"
        assert {k["role"] for k in status["keys"]} >= {"RK", "AMK", "PRK", "PUK"}
        assert svc.post("/card/status", {"key_counters": False}).json()["keys"] is None
        read = svc.post("/card/read", {"address": "3F00EF06|08|09|$"}).json()
        assert read["file"] == "EF06" and read["national"] == f"{SSN}|张三|"
        card_info = f"{basic['card_id']}|{basic['card_number']}|"
        assert svc.post("/card/read", {"address": "3F00EF05|07|$", "card_info": card_info}).json()[
            "records"
        ] == [{"tag": "07", "value": "X00000019"}]
    operations = [e.operation for e in svc.journal.entries]
    assert "card.read_holder" in operations and "card.status" in operations


def test_older_generations(svc: Service, insert: Insert) -> None:
    for generation, ssn in ((2, "110105196209152006"), (1, "110106199002283017")):
        with insert(card_os(generation)):
            assert svc.post("/card/basic").json()["generation"] == generation
            assert svc.post("/card/holder").json()["ssn"] == ssn
            assert svc.post("/card/authenticate").json()["sm2"] is None


def test_no_card_wrong_card_and_readers(svc: Service, insert: Insert) -> None:
    error(svc.post("/card/basic"), 409, -2, "no_card")
    error(svc.post("/card/basic", {"timeout": 0.2}), 409, -2, "card_wait_timeout")
    error(svc.post("/card/basic", {"reader": "no such reader"}), 404, -12, "reader_not_found")
    # A name matching several readers: the iType rule among them (the first holding a card).
    error(svc.post("/card/basic", {"reader": "Virtual PCD"}), 409, -2, "no_card")
    with insert(ForeignCard()):
        error(svc.post("/card/basic"), 409, -1, "wrong_card_type")
    with insert(card_os(3)):
        assert svc.post("/card/basic", {"reader": "virtual pcd"}).json()["generation"] == 3
        # The card reader is contact; iType 2 asks for a contactless card only.
        error(svc.post("/card/basic", {"itype": 2}), 409, -2, "no_card")


def test_request_waits_for_the_card(svc: Service, insert: Insert) -> None:
    results: dict[str, Any] = {}

    def call() -> None:
        results["response"] = svc.post("/card/basic", {"timeout": 8})

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.4)
    assert worker.is_alive()
    with insert(card_os(3)):
        worker.join(timeout=10)
    assert results["response"].status_code == 200
    assert results["response"].json()["card_number"] == "X00000019"


def test_card_removed_mid_request(svc: Service, insert: Insert) -> None:
    card = PullingCard(card_os(3))
    with insert(card) as link:
        card.arm(0xB2)  # READ RECORD
        body = error(svc.post("/card/holder"), 409, -2)
        assert body["error"] in ("card_removed", "no_card")
        assert card.pulled and not link.inserted


# -- PIN ------------------------------------------------------------------------------------------


def test_pin_verify_change_reset_unblock(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        assert svc.post("/pin/status").json() == {"state": "initial", "retries_left": 3, "max_tries": 3}
        ok = svc.post("/pin/verify", {"pin": INITIAL_PIN}).json()
        assert ok["ok"] is True and ok["entry"] == "body" and ok["operation"] == "verify"
        wrong = error(svc.post("/pin/verify", {"pin": WRONG_PIN}), 409, -51, "pin_wrong")
        assert wrong["retries_left"] == 2 and wrong["sw"] == "63C2"
        error(svc.post("/pin/verify", {"pin": INITIAL_PIN, "for_transaction": True}), 409, -35)
        error(svc.post("/pin/change", {"old_pin": INITIAL_PIN, "new_pin": INITIAL_PIN}), 409, -36)
        changed = svc.post("/pin/change", {"old_pin": INITIAL_PIN, "new_pin": NEW_PIN}).json()
        assert changed["state"] == "ok" and changed["retries_left"] == 3
        assert svc.post("/pin/verify", {"pin": NEW_PIN, "for_transaction": True}).json()["ok"] is True
        reset = svc.post("/pin/reset").json()
        assert reset["operation"] == "reset" and reset["state"] == "initial"
        assert svc.post("/pin/reset", {"new_pin": OTHER_PIN}).json()["state"] == "ok"
        assert svc.post("/pin/verify", {"pin": OTHER_PIN}).json()["ok"] is True
        for left in (2, 1, 0):
            assert error(svc.post("/pin/verify", {"pin": WRONG_PIN}), 409, -51)["retries_left"] == left
        error(svc.post("/pin/verify", {"pin": OTHER_PIN}), 409, -52, "pin_blocked")
        assert svc.post("/pin/status").json()["state"] == "blocked"
        unblocked = svc.post("/pin/unblock").json()
        assert unblocked["retries_left"] == 3 and unblocked["state"] == "ok"
        assert svc.post("/pin/verify", {"pin": OTHER_PIN}).json()["ok"] is True
    for entry in svc.journal.entries:
        assert not any(secret in value for value in entry.details.values() for secret in (OTHER_PIN, NEW_PIN))


def test_pin_typed_at_the_terminal_and_bad_pins(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        svc.pins.push(INITIAL_PIN)
        typed = svc.post("/pin/verify").json()
        assert typed["ok"] is True and typed["entry"] == "scripted"
        error(svc.post("/pin/verify"), 409, -32)  # nobody typed (the scripted queue is empty)
        svc.pins.push(PinEntryError(kind="cancelled"))
        error(svc.post("/pin/verify"), 409, -31)
        svc.pins.push(INITIAL_PIN, NEW_PIN)
        assert svc.post("/pin/change").json()["state"] == "ok"
        error(svc.post("/pin/change", {"old_pin": NEW_PIN}), 400, -14, "invalid_parameter")
        error(svc.post("/pin/verify", {"pin": "12a456"}), 400, -41)
        error(svc.post("/pin/verify", {"pin": "1234567"}), 400, -33)
        assert svc.post("/pin/status").json()["retries_left"] == 3


def test_pin_rate_limit_per_card(make_service: MakeService, insert: Insert) -> None:
    svc = make_service(pin={"attempts_per_window": 2, "window_seconds": 600.0, "failure_delay_seconds": 0.0})
    with insert(card_os(3)):
        error(svc.post("/pin/verify", {"pin": WRONG_PIN}), 409, -51)
        assert svc.post("/pin/verify", {"pin": INITIAL_PIN}).status_code == 200
        limited = svc.post("/pin/verify", {"pin": WRONG_PIN})
        body = error(limited, 429, -1306, "pin_rate_limited")
        assert body["retry_after"] > 0 and int(limited.headers["retry-after"]) >= 1
        # The refused attempt never reached the card.
        assert svc.post("/pin/status").json()["retries_left"] == 3
        # Reading is not rate-limited.
        assert svc.post("/card/basic").status_code == 200
    delayed = make_service(pin={"attempts_per_window": 100, "failure_delay_seconds": 30.0})
    with insert(card_os(3)):
        error(delayed.post("/pin/verify", {"pin": WRONG_PIN}), 409, -51)
        error(delayed.post("/pin/verify", {"pin": INITIAL_PIN}), 429, -1306)


# -- life cycle and generic access -------------------------------------------------------------------


def test_life_cycle(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        basic = svc.post("/card/basic").json()
        card_info = f"{basic['card_id']}|{basic['card_number']}|"
        other = "110102D156000005" + "11" * 8 + "|X00000020|"
        error(svc.post("/card/activate", {"card_info": other}), 409, -22, "card_data_mismatch")
        error(svc.post("/card/activate", {"card_info": "ZZ|X|"}), 400, -20)
        activated = svc.post("/card/activate", {"card_info": card_info}).json()
        assert activated == {
            "operation": "activate",
            "life_cycle_before": "personalised",
            "life_cycle": "active",
            "life_cycle_text": activated["life_cycle_text"],
        }
        error(svc.post("/card/activate"), 409, -27013)  # 6985: already active
        blocked = svc.post("/card/block").json()
        assert blocked["life_cycle"] == LifeCycle.TEMPORARILY_BLOCKED.label
        error(svc.post("/card/holder"), 409, -27265)  # 6A81 while blocked
        assert svc.post("/card/basic").json()["card_number"] == "X00000019"
        assert svc.post("/card/unblock", {"card_info": card_info}).json()["life_cycle"] == "active"
        assert svc.post("/card/block", {"mode": "permanent"}).json()["life_cycle"] == "permanently_blocked"
        error(svc.post("/card/unblock"), 409, -37635)  # 9303
        error(svc.post("/card/block", {"mode": "forever"}), 422, -14)


def test_generic_write_and_bad_addresses(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        written = svc.post("/card/write", {"address": "3F00EF07|21|23|$", "data": ["13800138000", "100010"]})
        assert written.json() == {"file": "EF07", "tags": ["21", "23"]}
        read = svc.post("/card/read", {"address": "3F00EF07|21|23|$"}).json()
        assert read["national"] == "13800138000|100010|"
        error(svc.post("/card/write", {"address": "3F00EF06|08|$", "data": [SSN]}), 400, -14)
        error(svc.post("/card/read", {"address": "3F00EF99|01|$"}), 400, -14)
        error(svc.post("/card/read", {"address": "EF06|08"}), 400, -14)
        error(svc.post("/card/write", {"address": "3F00EF07|21|$", "data": ["1" * 40]}), 400, -42)
        error(svc.post("/card/write", {"address": "3F00EF07|21|23|$", "data": ["1"]}), 400, -14)


def test_schema_errors_never_echo_input(svc: Service) -> None:
    secret_like = "9" * 40
    response = svc.post("/pin/verify", {"pin": secret_like})
    body = error(response, 422, -14, "invalid_request")
    assert secret_like not in response.text and body["fields"][0]["loc"] == "body.pin"
    error(svc.post("/card/basic", {"itype": 9}), 422, -14)
    error(svc.post("/card/basic", {"colour": "red"}), 422, -14)
    error(svc.post("/card/read", {}), 422, -14)
    from service_cards import auth

    not_json = svc.client.post(
        "/api/v1/card/basic", content=b"{", headers={**auth(), "Content-Type": "application/json"}
    )
    error(not_json, 422, -14)
    missing = svc.get("/no/such/endpoint")
    error(missing, 404, -13, "not_found")
    # The token is asked before routing: a wrong method or an unknown path says nothing without it.
    assert svc.client.get("/api/v1/card/basic", headers={"Authorization": "Bearer " + "x"}).status_code == 401
    assert svc.client.get("/api/v1/no/such/endpoint").status_code == 401
    assert svc.get("/card/basic").status_code == 405


def test_event_stream(svc: Service, insert: Insert, card_reader: str) -> None:
    from service_cards import EVENTS_WS, TOKEN

    with svc.client.websocket_connect(EVENTS_WS, subprotocols=["sscard.v1", f"bearer.{TOKEN}"]) as ws:
        hello = ws.receive_json()
        assert hello["event"] == "hello" and hello["api_version"] == "1.0"
        assert any(r["name"] == card_reader for r in hello["readers"])
        with insert(card_os(3)):
            inserted = _next_event(ws, "card_inserted", card_reader)
            assert inserted["card_kind"] == "social_security" and inserted["message"] == "已插卡：社保卡"
            assert svc.post("/card/basic").status_code == 200
            started = _next_event(ws, "flow_started")
            assert started["operation"] == "card.read_basic"
            progress = _next_event(ws, "flow_progress")
            assert progress["step"] == "card_connected" and progress["reader"] == card_reader
            finished = _next_event(ws, "flow_finished")
            assert finished["ok"] is True and finished["national_code"] == "0"
        removed = _next_event(ws, "card_removed", card_reader)
        assert removed["card_kind"] == "social_security"
        svc.post("/card/basic")
        failed = _next_event(ws, "flow_finished")
        assert failed["ok"] is False and failed["national_code"] == "-2" and failed["error"] == "no_card"


def _next_event(ws: Any, name: str, reader: str | None = None) -> dict[str, Any]:
    for _ in range(50):
        event: dict[str, Any] = ws.receive_json()
        assert "ssn" not in event and "name" not in event
        if event["event"] == name and (reader is None or event.get("reader") == reader):
            return event
    raise AssertionError(f"no {name} event")

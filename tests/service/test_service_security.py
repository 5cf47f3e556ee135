"""Security of the local service: loopback peers only, the Host header (DNS
rebinding), the Origin allow-list on every HTTP request and WebSocket
handshake of both ports, the bearer token, CORS and PINs kept out of URLs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from service_cards import (
    BASE,
    COUNTER_ORIGIN,
    EVENTS_WS,
    INITIAL_PIN,
    NATIONAL_WS,
    TOKEN,
    auth,
    client_log_quiet,
)
from service_harness import Service
from starlette.websockets import WebSocketDisconnect

FOREIGN = "https://evil.example"
OWN = "http://127.0.0.1:18080"


def refused(response: Any, status: int, error_id: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error_id and body["message"]
    assert "access-control-allow-origin" not in response.headers


@contextmanager
def refused_handshake() -> Iterator[None]:
    with pytest.raises(WebSocketDisconnect) as info:
        yield
    assert info.value.code == 1008


# -- HTTP ---------------------------------------------------------------------------------------------


def test_origin_allow_list_on_http(svc: Service) -> None:
    refused(svc.get("/version", headers={"Origin": FOREIGN}), 403, "origin_refused")
    refused(svc.get("/version", headers={"Origin": "null"}), 403, "origin_refused")
    refused(
        svc.get("/version", headers={"Origin": "https://counter.example.cn.evil.example"}),
        403,
        "origin_refused",
    )
    # Refused before the token is looked at, and on the national port's HTTP side too.
    refused(svc.client.get("/api/v1/version", headers={"Origin": FOREIGN}), 403, "origin_refused")
    refused(svc.client.get("http://127.0.0.1:18081/", headers={"Origin": FOREIGN}), 403, "origin_refused")
    refused(svc.client.get("/", headers={"Origin": FOREIGN}), 403, "origin_refused")

    allowed = svc.get("/version", headers={"Origin": COUNTER_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == COUNTER_ORIGIN
    assert "Origin" in allowed.headers["vary"]
    assert "X-Sscard-Api-Version" in allowed.headers["access-control-expose-headers"]
    # Origins compare in normal form: case and a trailing slash do not matter.
    assert svc.get("/version", headers={"Origin": "HTTPS://Counter.Example.CN/"}).status_code == 200
    own = svc.get("/version", headers={"Origin": OWN})
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers
    # Without Origin (a local program): the token decides.
    assert svc.get("/version").status_code == 200


def test_cors_preflight(svc: Service) -> None:
    preflight = {
        "Origin": COUNTER_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    answer = svc.client.options("/api/v1/card/basic", headers=preflight)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == COUNTER_ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "Authorization" in answer.headers["access-control-allow-headers"]
    assert answer.headers["access-control-allow-private-network"] == "true"
    refused(
        svc.client.options("/api/v1/card/basic", headers={**preflight, "Origin": FOREIGN}),
        403,
        "origin_refused",
    )


def test_host_header(svc: Service) -> None:
    for host in (
        "evil.example:18080",
        "evil.example",
        "127.0.0.1:9999",
        "127.0.0.1",
        "127.0.0.1.nip.io:18080",
        "[::2]:18080",
        "127.0.0.1:18080x",
    ):
        refused(svc.get("/version", headers={"Host": host}), 403, "host_refused")
    for host in ("127.0.0.1:18080", "localhost:18080", "LOCALHOST:18080", "[::1]:18080"):
        assert svc.get("/version", headers={"Host": host}).status_code == 200, host
    # The national port checks its own port.
    refused(
        svc.client.get("http://127.0.0.1:18081/", headers={"Host": "127.0.0.1:18080"}), 403, "host_refused"
    )
    assert svc.client.get("http://127.0.0.1:18081/").status_code == 200


def test_bearer_token(svc: Service) -> None:
    missing = svc.client.post("/api/v1/card/basic", json={})
    refused(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for value in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer  "):
        refused(
            svc.client.post("/api/v1/card/basic", json={}, headers={"Authorization": value}),
            401,
            "unauthorized",
        )
    for path in ("/api/v1/health", "/api/v1/openapi.json", "/api/v1/readers", "/api/v1/nothing"):
        refused(svc.client.get(path), 401, "unauthorized")
    assert svc.client.get("/api/v1/health", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    # The token never appears in an answer.
    assert TOKEN not in svc.get("/health").text and TOKEN not in missing.text


def test_loopback_peers_only(svc: Service) -> None:
    from service_cards import LOOPBACK_CLIENT
    from starlette.testclient import TestClient

    for peer in (("192.168.1.20", 5000), ("10.0.0.1", 5000), ("::ffff:8.8.8.8", 5000)):
        remote = TestClient(svc.app, base_url=BASE, client=peer)
        refused(remote.get("/api/v1/version", headers=auth()), 403, "client_refused")
    ipv6 = TestClient(svc.app, base_url=BASE, client=("::1", 5000))
    assert ipv6.get("/api/v1/version", headers=auth()).status_code == 200
    assert LOOPBACK_CLIENT[0] == "127.0.0.1"


def test_pin_never_in_a_url(svc: Service) -> None:
    with client_log_quiet():
        for query in (
            f"pin={INITIAL_PIN}",
            f"new_pin={INITIAL_PIN}",
            f"PIN={INITIAL_PIN}",
            f"x=1&password={INITIAL_PIN}",
            "%E5%AF%86%E7%A0%81=1",
        ):
            response = svc.client.post(f"/api/v1/pin/verify?{query}", json={}, headers=auth())
            refused(response, 400, "pin_in_url")
            assert INITIAL_PIN not in response.text
        refused(svc.client.get(f"/kiosk/?pin={INITIAL_PIN}"), 400, "pin_in_url")
    assert svc.client.get("/api/v1/version?lang=zh", headers=auth()).status_code == 200


def test_security_headers(svc: Service) -> None:
    answer = svc.get("/version")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-sscard-api-version"] == "1.0"


# -- WebSocket ----------------------------------------------------------------------------------------


def test_national_websocket_checks(svc: Service) -> None:
    with refused_handshake(), svc.client.websocket_connect(NATIONAL_WS, headers={"Origin": FOREIGN}):
        pass
    with (
        refused_handshake(),
        svc.client.websocket_connect(NATIONAL_WS, headers={"Host": "evil.example:18081"}),
    ):
        pass
    with refused_handshake(), svc.client.websocket_connect(NATIONAL_WS, headers={"Origin": "null"}):
        pass
    for headers in ({"Origin": COUNTER_ORIGIN}, {"Origin": OWN}, {}):
        with svc.client.websocket_connect(NATIONAL_WS, headers=headers) as ws:
            ws.send_json({"function": "iGetReaderInfo"})
            assert ws.receive_json()["success"] == 0


def test_event_stream_checks(svc: Service) -> None:
    with refused_handshake(), svc.client.websocket_connect(EVENTS_WS):
        pass
    with (
        refused_handshake(),
        svc.client.websocket_connect(EVENTS_WS, subprotocols=["sscard.v1", "bearer.wrong"]),
    ):
        pass
    with (
        refused_handshake(),
        svc.client.websocket_connect(EVENTS_WS, headers={"Authorization": "Bearer wrong"}),
    ):
        pass
    with (
        refused_handshake(),
        svc.client.websocket_connect(
            EVENTS_WS, subprotocols=["sscard.v1", f"bearer.{TOKEN}"], headers={"Origin": FOREIGN}
        ),
    ):
        pass
    with (
        refused_handshake(),
        svc.client.websocket_connect(EVENTS_WS, headers={**auth(), "Host": "evil.example:18080"}),
    ):
        pass
    with svc.client.websocket_connect(EVENTS_WS, headers=auth()) as ws:
        assert ws.receive_json()["event"] == "hello"
    with svc.client.websocket_connect(
        EVENTS_WS, subprotocols=["sscard.v1", f"bearer.{TOKEN}"], headers={"Origin": COUNTER_ORIGIN}
    ) as ws:
        assert ws.accepted_subprotocol == "sscard.v1"
        assert ws.receive_json()["event"] == "hello"

"""The service section's requests: answers checked, error answers raised or counted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from terminal.bench.errors import BenchCheckError
from terminal.bench.service_clients import Failures, http_call, national_call

PATH = "/api/v1/card/basic"


def _client(status: int, body: dict[str, Any], seen: list[dict[str, Any]]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, json=body)

    return httpx.Client(base_url="http://127.0.0.1:1", transport=httpx.MockTransport(answer))


def test_http_call_names_its_reader_and_needs_card_id() -> None:
    seen: list[dict[str, Any]] = []
    with _client(200, {"card_id": "X"}, seen) as client:
        http_call(client, PATH, "Virtual PCD 00 01")()
    assert seen == [{"reader": "Virtual PCD 00 01"}]
    with _client(200, {"generation": 3}, seen) as client, pytest.raises(BenchCheckError, match="card_id"):
        http_call(client, PATH, "r")()


def test_http_error_answer_raises_or_is_counted() -> None:
    body = {"error": "transport_error", "national_code": -11, "message": "与读卡器通信失败"}
    with _client(503, body, []) as client:
        with pytest.raises(BenchCheckError, match="503 transport_error"):
            http_call(client, PATH, "r")()
        failures = Failures()
        call = http_call(client, PATH, "r", failures)
        call()
        call()
    assert failures.counts == {"503 transport_error (-11)": 2}
    assert failures.total == 2


class _Socket:
    """Answers every message with one fixed national answer."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    def recv(self, timeout: float | None = None) -> str:
        return json.dumps(self.answer)


def test_national_call_needs_the_ssn_field() -> None:
    ok = _Socket({"function": "iReadCardBas", "success": 0, "pOutInfo": "110000|1101|X|Y|张三|"})
    national_call(ok, "iReadCardBas", 3, 5.0)()  # type: ignore[arg-type]
    assert ok.sent == [{"function": "iReadCardBas", "iType": 3}]
    empty = _Socket({"function": "iReadCardBas", "success": 0, "pOutInfo": "110000||X|Y||"})
    with pytest.raises(BenchCheckError, match="without the SSN"):
        national_call(empty, "iReadCardBas", 3, 5.0)()  # type: ignore[arg-type]


def test_national_error_answer_raises_or_is_counted() -> None:
    failing = _Socket({"function": "iReadCardBas", "success": -11, "pOutInfo": "", "message": "通信失败"})
    with pytest.raises(BenchCheckError, match="success=-11"):
        national_call(failing, "iReadCardBas", 3, 5.0)()  # type: ignore[arg-type]
    failures = Failures()
    national_call(failing, "iReadCardBas", 3, 5.0, failures)()  # type: ignore[arg-type]
    assert failures.counts == {"success=-11 (通信失败)": 1}

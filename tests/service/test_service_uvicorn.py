"""The service under a real uvicorn on free loopback ports: HTTP and both
WebSockets over TCP as a counter PC reaches them, the security checks on the
wire, request latency (printed, not asserted), and ``sscard serve`` as a
process (``python -m terminal.service``): its start-up lines, a run of PIN
operations, and a log without PINs afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_cards import (
    COUNTER_ORIGIN,
    INITIAL_PIN,
    NEW_PIN,
    OTHER_PIN,
    SECRETS,
    SSN,
    TOKEN,
    WRONG_PIN,
    auth,
    card_os,
    client_log_quiet,
    fields,
    settings,
)
from service_harness import Insert
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from emulator.vpcd import VpcdLink
from terminal.journal_hook import MemoryJournal
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.pinentry import ScriptedPinEntry
from terminal.service.server import ServiceServer, bind_sockets
from terminal.service.tokens import AccessToken

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, card_reader: str, psam_reader: str, psam: VpcdLink
) -> Iterator[ServiceServer]:
    tmp = tmp_path_factory.mktemp("uvicorn")
    doc = settings(tmp, card_reader, psam_reader, service={"port": 0, "national_port": 0})
    bound = bind_sockets(config_from_mapping(doc))
    app = create_app(
        bound.config, token=AccessToken(TOKEN), pin_provider=ScriptedPinEntry(), journal=MemoryJournal()
    )
    with ServiceServer(bound, app) as running:
        yield running


def urls(server: ServiceServer) -> tuple[str, str]:
    return f"http://127.0.0.1:{server.config.port}", f"ws://127.0.0.1:{server.config.national_port}"


def test_counter_pc_over_tcp(server: ServiceServer, insert: Insert) -> None:
    base, national = urls(server)
    assert server.config.port not in (0, 18080) and server.config.national_port not in (0, server.config.port)
    with httpx.Client(base_url=base, headers=auth(), timeout=30) as http, insert(card_os(3)):
        assert http.get("/api/v1/health").json()["status"] == "ok"
        holder = http.post("/api/v1/card/holder", json={}, headers={"Origin": COUNTER_ORIGIN})
        assert holder.json()["ssn"] == SSN and holder.headers["access-control-allow-origin"] == COUNTER_ORIGIN
        with connect(national, origin=COUNTER_ORIGIN) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"function": "iReadCardBas", "iType": 3}))
            answer = json.loads(ws.recv(timeout=30))
            parts = fields(answer["pOutInfo"])
            assert answer["success"] == 0 and parts[1] == SSN and parts[4] == "张三"
        with connect(f"{base.replace('http', 'ws')}/api/v1/events", additional_headers=auth()) as events:
            assert json.loads(events.recv(timeout=30))["event"] == "hello"
        # Latency as a counter page sees it (printed for the report; never asserted).
        timings: dict[str, float] = {}
        for path in ("/api/v1/card/basic", "/api/v1/card/national"):
            samples = []
            for _ in range(15):
                started = time.perf_counter()
                assert http.post(path, json={}).status_code == 200
                samples.append((time.perf_counter() - started) * 1000)
            timings[path] = statistics.median(samples)
        print("median latency (ms):", {k: round(v, 1) for k, v in timings.items()})


def test_refusals_on_the_wire(server: ServiceServer) -> None:
    base, national = urls(server)
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/api/v1/version").status_code == 401
        assert (
            http.get("/api/v1/version", headers={**auth(), "Origin": "https://evil.example"}).status_code
            == 403
        )
        assert http.get("/api/v1/version", headers={**auth(), "Host": "evil.example"}).status_code == 403
        assert http.get("/api/v1/version", headers=auth()).status_code == 200
    with pytest.raises(InvalidStatus) as foreign, connect(national, origin="https://evil.example"):  # type: ignore[arg-type]
        pass
    assert foreign.value.response.status_code == 403
    # A page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name as Host.
    rebound = f"ws://evil.example:{server.config.national_port}"
    with socket.create_connection(("127.0.0.1", server.config.national_port)) as sock:
        with pytest.raises(InvalidStatus) as wrong_host, connect(rebound, sock=sock):
            pass
    assert wrong_host.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused, connect(f"{base.replace('http', 'ws')}/api/v1/events"):
        pass
    assert refused.value.response.status_code == 403


# -- sscard serve as a process ------------------------------------------------------------------------------


@pytest.fixture
def serve_process(
    tmp_path: Path, card_reader: str, psam_reader: str, psam: VpcdLink
) -> Iterator[dict[str, Any]]:
    log_file = tmp_path / "service.log"
    token_file = tmp_path / "data" / "token"
    config = tmp_path / "sscard.toml"
    config.write_text(
        "\n".join(
            [
                "[service]",
                "port = 0",
                "national_port = 0",
                f'token_file = "{token_file}"',
                f'log_file = "{log_file}"',
                'log_level = "DEBUG"',
                "[readers]",
                f'card = "{card_reader}"',
                f'psam = "{psam_reader}"',
                "[pin]",
                "failure_delay_seconds = 0.0",
                "attempts_per_window = 100",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "terminal.service", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while not any("Ctrl+C" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                raise AssertionError(
                    "sscard serve ended early: " + (process.stderr.read() if process.stderr else "")
                )
            lines.append(line)
        api = re.search(r"native API: (http://127\.0\.0\.1:\d+)/api/v1/", "".join(lines))
        national = re.search(r"\(WebSocket\): (ws://127\.0\.0\.1:\d+)", "".join(lines))
        assert api and national, lines
        yield {
            "lines": lines,
            "api": api.group(1),
            "national": national.group(1),
            "token_file": token_file,
            "log_file": log_file,
            "process": process,
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_serve_process_keeps_pins_out_of_its_log(serve_process: dict[str, Any], insert: Insert) -> None:
    lines: list[str] = serve_process["lines"]
    token_file: Path = serve_process["token_file"]
    assert any(str(token_file) in line for line in lines)
    token = token_file.read_text(encoding="ascii").strip()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert not any(token in line for line in lines)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=serve_process["api"], headers=headers, timeout=20) as http, insert(card_os(3)):
        post = http.post
        assert post("/api/v1/pin/verify", json={"pin": INITIAL_PIN}).status_code == 200
        assert post("/api/v1/pin/verify", json={"pin": WRONG_PIN}).json()["national_code"] == "-51"
        assert (
            post("/api/v1/pin/change", json={"old_pin": INITIAL_PIN, "new_pin": NEW_PIN}).status_code == 200
        )
        assert post("/api/v1/pin/reset", json={"new_pin": OTHER_PIN}).status_code == 200
        assert post("/api/v1/pin/change", json={"old_pin": WRONG_PIN, "new_pin": NEW_PIN}).status_code == 409
        assert post("/api/v1/pin/verify", json={"pin": SSN + SSN}).status_code == 422
        with client_log_quiet():
            assert post(f"/api/v1/pin/verify?pin={OTHER_PIN}", json={}).status_code == 400
        assert post("/api/v1/card/holder", json={}).json()["ssn"] == SSN
        with connect(serve_process["national"]) as ws:
            ws.send(json.dumps({"function": "iReadCardBas", "iType": 3}))
            assert fields(json.loads(ws.recv(timeout=30))["pOutInfo"])[1] == SSN
            ws.send(json.dumps({"function": "iReloadPIN", "iType": 3, "pCardInfo": ""}))
            assert json.loads(ws.recv(timeout=30))["success"] == 0
    process: subprocess.Popen[str] = serve_process["process"]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    log = serve_process["log_file"].read_text(encoding="utf-8")
    assert "pin.verify" in log and "national iReadCardBas -> 0" in log
    for text in (log, out, err):
        assert not [secret for secret in SECRETS if secret in text], (
            "a PIN or the SSN reached the service log"
        )
        assert token not in text


def test_sscard_serve_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``sscard serve --json`` through the root CLI: the start-up summary as one
    JSON line (the token file's path, never the token), a working API, and a
    graceful stop with exit 0 when a service manager sends SIGTERM."""
    token_file = tmp_path / "token"
    config = tmp_path / "sscard.toml"
    config.write_text(
        f'[service]\nport = 0\nnational_port = 0\ntoken_file = "{token_file}"\n', encoding="utf-8"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "serve", "--json", "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        summary = json.loads(process.stdout.readline())
        assert summary["token_file"] == str(token_file)
        token = token_file.read_text(encoding="ascii").strip()
        assert token not in json.dumps(summary)
        with httpx.Client(base_url=summary["api"].removesuffix("/api/v1/"), timeout=20) as http:
            assert (
                http.get("/api/v1/version", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            )
            assert http.get("/api/v1/version").status_code == 401
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sscard service stopped" in err and "服务已停止" in err
    assert out == "" and token not in err

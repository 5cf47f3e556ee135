"""The service's parts on their own: configuration, token file, PIN rate
limit, the per-card queue, the national message format, the version rule,
the ``serve`` command's refusals, and PIN entry on a reader's PIN pad (PC/SC
part 10) through the whole service over an in-process backend."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from service_cards import BASE, INITIAL_PIN, LOOPBACK_CLIENT, NATIONAL_WS, NEW_PIN, TOKEN, WRONG_PIN, auth
from service_fakes import InProcessBackend

from apdu.errors import InvalidInput, PcscUnavailableError, PinError
from card_model.demo import demo_card_image, demo_psam_image
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from terminal.service.api import compare_versions
from terminal.service.app import create_app
from terminal.service.cli import serve_command, startup_lines, startup_summary
from terminal.service.config import config_from_mapping, is_loopback_host, load_config, normalize_origin
from terminal.service.errors import (
    CardBusy,
    FunctionNotSupported,
    PinRateLimited,
    RequestInvalid,
    ServiceConfigError,
)
from terminal.service.national_protocol import answer, error_answer, parse_call
from terminal.service.opqueue import CardQueue
from terminal.service.ratelimit import PinRateLimiter
from terminal.service.tokens import AccessToken, load_or_create_token
from terminal.watch import ReaderEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


# -- configuration ------------------------------------------------------------------------------------


def test_defaults_and_loopback_rule() -> None:
    config = config_from_mapping({})
    assert (config.host, config.port, config.national_port) == ("127.0.0.1", 18080, 18081)
    assert config.key_source == "psam" and config.pin_entry == "auto" and config.origins == ()
    assert config.token_file.name == "token"
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback_host(host)
    for host in ("0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "", "127.0.0.1.example.com"):
        assert not is_loopback_host(host)
        with pytest.raises(ServiceConfigError, match="loopback"):
            config_from_mapping({"service": {"host": host}})
    with pytest.raises(ServiceConfigError, match="loopback"):
        config.with_overrides(host="0.0.0.0")
    moved = config.with_overrides(host="::1", port=0, national_port=9001, card_reader="ACS")
    assert (moved.host, moved.port, moved.national_port, moved.card_reader, moved.kiosk_reader) == (
        "::1",
        0,
        9001,
        "ACS",
        "ACS",
    )
    assert "http://[::1]:0" in moved.own_origins


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"service": {"port": 70000}}, "service.port"),
        ({"service": {"port": 18081}}, "national_port"),
        ({"service": {"port": "18080"}}, "an integer"),
        ({"service": {"origins": ["https://ok.example/path"]}}, "only scheme"),
        ({"service": {"origins": ["ftp://ok.example"]}}, "scheme://host"),
        ({"service": {"origins": "https://ok.example"}}, "a list"),
        ({"service": {"card_wait_seconds": -1}}, "seconds"),
        ({"service": {"colour": "red"}}, "unknown key"),
        ({"printer": {}}, "unknown section"),
        ({"key_source": {"kind": "usb-stick"}}, "key_source.kind"),
        ({"key_source": {"kind": "dev_key_file"}}, "key_source.path"),
        ({"pin": {"entry": "voice"}}, "pin.entry"),
        ({"pin": {"attempts_per_window": 0}}, "attempts_per_window"),
        ({"kiosk": {"enabled": "yes"}}, "true or false"),
        ({"service": {"log_level": "LOUD"}}, "log_level"),
    ],
)
def test_bad_configuration_values(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ServiceConfigError, match=message) as info:
        config_from_mapping(doc)
    assert info.value.national_code == -1301


def test_configuration_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sscard.toml"
    path.write_text(
        '[serve.service]\nport = 18580\norigins = ["HTTPS://Counter.Example.CN:443/"]\n'
        '[serve.terminal]\nzdbm = "Z01"\nterminal_number = "110102000009"\n'
        '[serve.readers]\ncard = "ACS ACR"\n[registry]\nurl = "sqlite://"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.port == 18580 and config.origins == ("https://counter.example.cn",)
    assert (
        config.zdbm == "Z01" and config.terminal_number == "110102000009" and config.kiosk_reader == "ACS ACR"
    )
    monkeypatch.setenv("SSCARD_CONFIG", str(path))
    assert load_config().source == str(path)
    monkeypatch.delenv("SSCARD_CONFIG")
    assert load_config().source == "<defaults>"
    with pytest.raises(ServiceConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[service\n", encoding="utf-8")
    with pytest.raises(ServiceConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    assert normalize_origin("http://LOCALHOST:80") == "http://localhost"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"


# -- token --------------------------------------------------------------------------------------------


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "service" / "token"
    token = load_or_create_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert token.value not in repr(token) and token.value not in str(token)
    assert load_or_create_token(path).matches(token.value)
    assert not token.matches(token.value[:-1]) and not token.matches(None) and not token.matches("")
    path.chmod(0o644)
    load_or_create_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n", encoding="ascii")
    with pytest.raises(ServiceConfigError, match="valid token") as info:
        load_or_create_token(path)
    assert "short" not in str(info.value)
    if os.geteuid() != 0:
        path.chmod(0)
        with pytest.raises(ServiceConfigError):
            load_or_create_token(path)


# -- rate limit, queue --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pin_rate_limiter() -> None:
    clock = Clock()
    limiter = PinRateLimiter(attempts=3, window=60.0, failure_delay=2.0, clock=clock)
    limiter.check("A")
    limiter.failed("A")
    with pytest.raises(PinRateLimited) as early:
        limiter.check("A")
    assert 1.9 < early.value.retry_after <= 2.0 and early.value.to_dict()["retry_after"] == 2.0
    limiter.check("B")  # another card is not affected
    clock.now += 2.1
    limiter.check("A")
    limiter.failed("A")
    with pytest.raises(PinRateLimited) as doubled:
        limiter.check("A")
    assert 3.9 < doubled.value.retry_after <= 4.0
    clock.now += 4.1
    limiter.check("A")
    limiter.succeeded("A")
    with pytest.raises(PinRateLimited) as window:
        limiter.check("A")  # the fourth attempt within 60 s
    assert window.value.retry_after > 50
    clock.now += 61
    limiter.check("A")
    clock.now += 120
    limiter.check("A")  # card B, idle for a window, is forgotten here
    assert limiter.tracked == 1


def test_card_queue_is_first_come_first_served() -> None:
    queue = CardQueue()
    first = queue.acquire("R", 1.0)
    assert queue.busy("R") and not queue.busy("other")
    with pytest.raises(CardBusy):
        queue.acquire("R", 0.05)
    order: list[int] = []

    def later(n: int, delay: float) -> None:
        time.sleep(delay)
        with queue.acquire("R", 5.0):
            order.append(n)
            time.sleep(0.01)

    workers = [threading.Thread(target=later, args=(n, 0.05 * n)) for n in (1, 2, 3)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    assert order == [] and queue.waiting("R") == 3
    first.release()
    first.release()  # releasing twice is harmless
    for worker in workers:
        worker.join(timeout=5)
    assert order == [1, 2, 3] and not queue.busy("R")


# -- national message format ----------------------------------------------------------------------------


def test_national_messages() -> None:
    call = parse_call(
        '{"function": "iReadCard", "iType": "3", "iAuthType": 1, "pCardInfo": "", '
        '"pFileAddr": "3F00EF06|08|$", "id": "q1", "extra": true}'
    )
    assert call.args == {"iType": 3, "iAuthType": 1, "pCardInfo": "", "pFileAddr": "3F00EF06|08|$"}
    assert call.echo == {"id": "q1"} and repr(call) == "NationalCall(iReadCard)"
    for raw, error in (
        ("nonsense", RequestInvalid),
        ('{"function": ""}', RequestInvalid),
        ('{"function": "iFly"}', FunctionNotSupported),
        ('{"function": "iReadCardBas", "iType": true}', InvalidInput),
        ('{"function": "iReadCardBas", "iType": 0}', InvalidInput),
        ('{"function": "iReloadPIN", "iType": 3, "pCardInfo": 5}', InvalidInput),
    ):
        with pytest.raises(error):
            parse_call(raw)
    ok = answer("iReadCardBas", 0, "a|b|")
    assert ok == {"function": "iReadCardBas", "success": 0, "pOutInfo": "a|b|", "message": "成功"}
    wrong = error_answer("iVerifyPIN", PinError(retries_left=1), echo={"id": 3})
    assert (
        wrong["success"] == -51 and wrong["pOutInfo"] == "1|" and wrong["id"] == 3 and "1" in wrong["message"]
    )


def test_version_rule() -> None:
    assert compare_versions("1.0", "1.0") == 0
    assert compare_versions("1.0", "1.4") == 0
    assert compare_versions("1.2", "1.0") == -1
    assert compare_versions("2.0", "1.9") == -1
    assert compare_versions("1.0", "2.0") == 1


# -- sscard serve -----------------------------------------------------------------------------------------


def test_serve_command_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(serve_command, ["--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "loopback" in refused.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[service]\nhost = "192.168.1.4"\n', encoding="utf-8")
    assert runner.invoke(serve_command, ["--config", str(bad)]).exit_code == 2
    same = runner.invoke(serve_command, ["--port", "18090", "--national-port", "18090"])
    assert same.exit_code == 2
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = runner.invoke(serve_command, ["--port", str(port), "--national-port", "0"])
        assert busy.exit_code == 2 and "cannot listen" in busy.output, busy.output
    summary = startup_summary(config_from_mapping({}), tmp_path / "token")
    assert summary["token_file"] == str(tmp_path / "token") and summary["national"] == "ws://127.0.0.1:18081"
    lines = startup_lines(summary)
    assert any(str(tmp_path / "token") in line and "令牌" in line for line in lines)


# -- PIN pad (PC/SC part 10) through the service -------------------------------------------------------------


@pytest.fixture
def pinpad_service(tmp_path: Path) -> Iterator[tuple[TestClient, InProcessBackend]]:
    backend = InProcessBackend(CardOS(demo_card_image(3)), PsamCard(demo_psam_image()))
    config = config_from_mapping(
        {
            "service": {"token_file": str(tmp_path / "token"), "card_wait_seconds": 0.0},
            "pin": {"entry": "auto", "failure_delay_seconds": 0.0, "attempts_per_window": 100},
        }
    )
    app = create_app(config, backend=backend, token=AccessToken(TOKEN))
    with TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT) as client:
        yield client, backend


def test_pin_typed_on_the_reader_pin_pad(pinpad_service: tuple[TestClient, InProcessBackend]) -> None:
    client, backend = pinpad_service

    def post(path: str, body: dict[str, Any] | None = None) -> Any:
        return client.post(f"/api/v1{path}", json=body or {}, headers=auth())

    backend.typed.append(INITIAL_PIN)
    verified = post("/pin/verify").json()
    assert verified["ok"] is True and verified["entry"] == "auto"
    backend.typed.append(WRONG_PIN)
    wrong = post("/pin/verify")
    assert (
        wrong.status_code == 409
        and wrong.json()["national_code"] == "-51"
        and wrong.json()["retries_left"] == 2
    )
    for code, national in ((0x6400, -32), (0x6401, -31)):
        backend.typed.append(code)
        assert post("/pin/verify").json()["national_code"] == str(national)
    backend.typed.extend([INITIAL_PIN, NEW_PIN, NEW_PIN])
    assert post("/pin/change").json()["state"] == "ok"
    backend.typed.extend([NEW_PIN, INITIAL_PIN, WRONG_PIN])
    assert post("/pin/change").json()["national_code"] == "-34"
    with client.websocket_connect(NATIONAL_WS) as ws:
        backend.typed.append(NEW_PIN)
        ws.send_json({"function": "iVerifyPIN", "iType": 3})
        assert ws.receive_json()["success"] == 0
        backend.typed.extend([NEW_PIN, INITIAL_PIN, INITIAL_PIN])
        ws.send_json({"function": "iChangePIN", "iType": 3})
        assert ws.receive_json()["success"] == 0
    # The PIN never went through the service: the structures it sent hold empty PIN blocks only.
    sent = [s for pad in backend.pads for s in pad.structures]
    assert sent and all(bytes.fromhex(INITIAL_PIN) not in s and bytes.fromhex(NEW_PIN) not in s for s in sent)
    # A typed PIN in the body still works on a PIN pad reader.
    assert post("/pin/verify", {"pin": INITIAL_PIN}).json()["entry"] == "body"


def test_pin_pad_required_but_missing(tmp_path: Path) -> None:
    backend = InProcessBackend(CardOS(demo_card_image(3)), PsamCard(demo_psam_image()), pinpad=False)
    config = config_from_mapping(
        {"service": {"token_file": str(tmp_path / "token")}, "pin": {"entry": "pinpad"}}
    )
    app = create_app(config, backend=backend, token=AccessToken(TOKEN))
    with TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT) as client:
        refused = client.post("/api/v1/pin/verify", json={}, headers=auth())
        assert refused.status_code == 409 and refused.json()["error"] == "pin_entry_unavailable"
        assert client.post("/api/v1/pin/verify", json={"pin": INITIAL_PIN}, headers=auth()).status_code == 200


# -- the event stream: readers attached and detached ---------------------------------------------------------


def test_event_stream_reports_readers_attached_and_detached(tmp_path: Path) -> None:
    """vpcd's readers never come and go, so the watcher's reader events are
    fed through the in-process backend's watch callback (from another thread,
    as the real watcher calls it)."""
    backend = InProcessBackend(None, PsamCard(demo_psam_image()))
    config = config_from_mapping({"service": {"token_file": str(tmp_path / "token")}})
    app = create_app(config, backend=backend, token=AccessToken(TOKEN))
    extra = "ACS ACR39U PICC Reader 01"
    with (
        TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT) as client,
        client.websocket_connect(
            "ws://127.0.0.1:18080/api/v1/events", subprotocols=["sscard.v1", f"bearer.{TOKEN}"]
        ) as ws,
    ):
        assert ws.receive_json()["event"] == "hello"
        watch = backend.watching
        assert watch is not None

        def feed(*events: ReaderEvent) -> None:
            thread = threading.Thread(target=lambda: [watch(e) for e in events])
            thread.start()
            thread.join()

        feed(
            ReaderEvent("reader_added", extra, "contactless"),
            ReaderEvent("card_inserted", extra, "contactless", CardOS(demo_card_image(3)).atr()),
            ReaderEvent("card_removed", extra, "contactless"),
            ReaderEvent("reader_removed", extra, "contactless"),
            ReaderEvent("pcsc_unavailable"),
            ReaderEvent("pcsc_available"),
        )
        seen = [ws.receive_json() for _ in range(6)]
        assert [e["event"] for e in seen] == [
            "reader_attached",
            "card_inserted",
            "card_removed",
            "reader_detached",
            "pcsc_unavailable",
            "pcsc_available",
        ]
        attached, inserted, removed, detached = seen[:4]
        assert attached["reader"] == extra and attached["reader_kind"] == "contactless"
        assert attached["message"] == "读卡器已连接" and attached["message_en"] == "reader connected"
        assert inserted["card_kind"] == "social_security" and removed["card_kind"] == "social_security"
        assert detached["reader"] == extra and detached["message"] == "读卡器已断开"
        assert all(e["at"] for e in seen)
        # A new subscriber's hello lists the readers the watcher reported.
        feed(ReaderEvent("reader_added", extra, "contactless"))
        assert ws.receive_json()["event"] == "reader_attached"
    with (
        TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT) as client,
        client.websocket_connect("ws://127.0.0.1:18080/api/v1/events", headers=auth()) as ws,
    ):
        hello = ws.receive_json()
        assert hello["event"] == "hello" and hello["readers"] == [
            {"name": extra, "kind": "contactless", "card_kind": None}
        ]


# -- health without pcscd ----------------------------------------------------------------------------------


class _NoPcscd(InProcessBackend):
    """A backend whose PC/SC service is down (pcscd stopped)."""

    def readers(self) -> list[Any]:
        raise PcscUnavailableError("SCardEstablishContext: no service")

    def open_psam(self, pattern: str) -> Any:
        raise PcscUnavailableError("SCardEstablishContext: no service")


def test_health_says_when_pcscd_is_not_reachable(tmp_path: Path) -> None:
    backend = _NoPcscd(CardOS(demo_card_image(3)), PsamCard(demo_psam_image()))
    config = config_from_mapping(
        {
            "service": {"token_file": str(tmp_path / "token"), "card_wait_seconds": 0.0},
            "key_source": {"kind": "psam"},
        }
    )
    app = create_app(config, backend=backend, token=AccessToken(TOKEN))
    with TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT) as client:
        health = client.get("/api/v1/health", headers=auth())
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded" and body["readers"] == []
        assert body["pcscd"] == {"reachable": False, "error": "pcsc_unavailable"}
        assert body["key_source"]["kind"] == "psam" and body["key_source"]["present"] is False
        assert body["api_version"] == "1.0" and body["versions"]["sscard"]
        read = client.post("/api/v1/card/basic", json={}, headers=auth())
        assert read.status_code == 503 and read.json()["national_code"] == "-11"
        assert read.json()["error"] == "pcsc_unavailable"
        with client.websocket_connect(NATIONAL_WS) as ws:
            ws.send_json({"function": "iReadCardBas", "iType": 3})
            assert ws.receive_json()["success"] == -11

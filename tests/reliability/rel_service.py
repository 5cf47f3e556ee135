"""The local service as a separate process (``python -m terminal.service``)
on a private pcscd, for the infrastructure-fault and soak tests.

:class:`ServiceProcess` writes a configuration (free loopback ports, a token
file, a log file, the PSAM key source, the demo CA as trust anchor, PINs in
request bodies, no PIN delays), starts the service with
``PCSCLITE_CSOCK_NAME`` pointing at the private daemon (``launcher``: the
interpreter arguments before ``--config``; the memory study passes
``rel_memtrace.py``), reads its ports from
the start-up lines and offers: native API calls, national WebSocket calls,
an event-stream subscriber, and the process's resident memory and open
file descriptors (``/proc``).  Only the process started here is signalled.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from card_model.demo import demo_ca

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def config_text(doc: Mapping[str, Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for section, table in doc.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


class ServiceProcess:
    """See the module docstring."""

    def __init__(
        self,
        tmp: Path,
        env: Mapping[str, str],
        *,
        psam_reader: str,
        journal: str = "none",
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        launcher: Sequence[str] = ("-m", "terminal.service"),
    ) -> None:
        self.tmp = tmp
        self.launcher = tuple(launcher)
        self.env = dict(env)
        self.token_file = tmp / "data" / "token"
        self.log_file = tmp / "service.log"
        anchor = tmp / "demo-ca.pem"
        anchor.write_bytes(demo_ca().certificate.to_pem())
        doc: dict[str, dict[str, Any]] = {
            "service": {
                "port": 0,
                "national_port": 0,
                "token_file": str(self.token_file),
                "log_file": str(self.log_file),
                "log_level": "INFO",
                "card_wait_seconds": 0.0,
                "queue_wait_seconds": 20.0,
            },
            "readers": {"psam": psam_reader},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": "T-REL-01", "device_number": "DEV-REL", "trust_anchors": [str(anchor)]},
            "pin": {"entry": "page", "attempts_per_window": 1000, "failure_delay_seconds": 0.0},
            "journal": {"kind": journal},
        }
        for name, table in (extra or {}).items():
            doc.setdefault(name, {}).update(table)
        self.config = tmp / "sscard.toml"
        self.config.write_text(config_text(doc), encoding="utf-8")
        self.process: subprocess.Popen[str] | None = None
        self.api = ""
        self.national = ""
        self.token = ""
        self.stderr_lines: list[str] = []
        self._http: httpx.Client | None = None

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> ServiceProcess:
        env = {
            **self.env,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            "SSCARD_DATA_DIR": str(self.tmp / "data"),
        }
        self.process = subprocess.Popen(
            [sys.executable, *self.launcher, "--config", str(self.config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT
        while not any("Ctrl+C" in line for line in lines):
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the service did not start: " + "".join(self.stderr_lines[-20:]))
            lines.append(line)
        text = "".join(lines)
        api = re.search(r"native API: (http://127\.0\.0\.1:\d+)/api/v1/", text)
        national = re.search(r"\(WebSocket\): (ws://127\.0\.0\.1:\d+)", text)
        assert api and national, text
        self.api, self.national = api.group(1), national.group(1)
        self.token = self.token_file.read_text(encoding="ascii").strip()
        self._http = httpx.Client(base_url=self.api, headers=self.auth, timeout=60)
        return self

    def _pump_stderr(self) -> None:
        process = self.process
        assert process is not None and process.stderr is not None
        for line in process.stderr:
            self.stderr_lines.append(line)

    def stop(self) -> int | None:
        """SIGINT and wait; the exit status (None when it had to be killed)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
                return None
        return process.returncode

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- measurements ----------------------------------------------------------------------------

    def rss_kib(self) -> int:
        """Resident memory of the service process (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def fds(self) -> int:
        """Open file descriptors of the service process."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fd_kinds(self) -> dict[str, int]:
        """Open file descriptors by kind (socket, pipe, anon_inode, file)."""
        kinds: dict[str, int] = {}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except OSError:
                continue
            kind = target.split(":", 1)[0] if ":" in target and not target.startswith("/") else "file"
            kinds[kind] = kinds.get(kind, 0) + 1
        return dict(sorted(kinds.items()))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""

    # -- calls -----------------------------------------------------------------------------------

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        assert self._http is not None
        return self._http.post(f"/api/v1{path}", json=dict(body or {}))

    def get(self, path: str) -> httpx.Response:
        assert self._http is not None
        return self._http.get(f"/api/v1{path}")

    def client(self) -> httpx.Client:
        """A new HTTP client of this service (one per thread)."""
        return httpx.Client(base_url=self.api, headers=self.auth, timeout=60)

    @contextmanager
    def national_ws(self) -> Iterator[ClientConnection]:
        with connect(self.national, open_timeout=10) as ws:
            yield ws

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def card_present(self, reader: str) -> bool:
        answer = self.get("/readers")
        if answer.status_code != 200:
            return False
        return any(r["name"] == reader and r["card_present"] for r in answer.json()["readers"])

    def reader_listed(self, reader: str) -> bool:
        answer = self.get("/readers")
        return answer.status_code == 200 and any(r["name"] == reader for r in answer.json()["readers"])


def national_call(ws: ClientConnection, function: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
    ws.send(json.dumps({"function": function, **args}, ensure_ascii=False))
    answer: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return answer


class EventListener:
    """A subscriber of ``/api/v1/events`` collecting every event in a queue (background thread)."""

    def __init__(self, service: ServiceProcess) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        url = f"{service.api.replace('http', 'ws')}/api/v1/events"
        self._connection = connect(url, additional_headers=service.auth, open_timeout=10)
        self._ws = self._connection.__enter__()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for message in self._ws:
                self.events.put(json.loads(message))
        except Exception:
            return

    def next(self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = [e.get("event") for e in self.seen[-30:]]
                raise AssertionError(f"event not seen; the last ones: {names}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
        self._thread.join(timeout=5)

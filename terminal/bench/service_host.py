"""``sscard serve`` processes for the service section, configured for the bench's readers.

Each :class:`ServiceProcess` is the real service (``python -m terminal.cli
--json serve --config FILE``) in its own process, as a counter PC runs it:
the configuration is ``data/service.toml``'s ``[config]`` plus the card and
PSAM reader names, the token file and the demo CA as trust anchor, all in a
private working directory.  Ports are chosen by the service (``port = 0``)
and read from the JSON start-up summary it prints.  The service's log goes
to a file in the working directory, which is deleted with it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import tomli_w

from card_model.demo import demo_ca
from terminal.bench._data import load_data
from terminal.bench.errors import BenchSetupError
from terminal.service.tokens import load_or_create_token

__all__ = ["ServiceProcess", "write_token"]

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 15.0


def write_token(folder: Path) -> tuple[Path, str]:
    """A fresh access token in ``folder/token`` (created as the service creates it): ``(path, value)``."""
    path = folder / "token"
    return path, load_or_create_token(path).value


def _config(card_reader: str, psam_reader: str, token_file: Path, anchor: Path) -> dict[str, Any]:
    doc: dict[str, dict[str, Any]] = {
        name: dict(table) for name, table in load_data("service")["config"].items()
    }
    doc.setdefault("service", {})["token_file"] = str(token_file)
    doc.setdefault("readers", {}).update({"card": card_reader, "psam": psam_reader})
    doc.setdefault("terminal", {})["trust_anchors"] = [str(anchor)]
    return doc


class ServiceProcess:
    """``with ServiceProcess(...) as service:`` -> ``service.api`` and ``service.national`` URLs."""

    def __init__(self, folder: Path, card_reader: str, psam_reader: str, token_file: Path) -> None:
        self.folder = folder
        self.card_reader = card_reader
        self.psam_reader = psam_reader
        self.token_file = token_file
        self.api = ""
        self.national = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start the process (returns at once; :meth:`wait_ready` waits for its addresses)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        anchor = self.folder / "demo-ca.pem"
        anchor.write_bytes(demo_ca().certificate.to_pem())
        config = self.folder / "sscard.toml"
        config.write_text(
            tomli_w.dumps(_config(self.card_reader, self.psam_reader, self.token_file, anchor)),
            encoding="utf-8",
        )
        env = {key: value for key, value in os.environ.items() if key != "SSCARD_CONFIG"}
        env.update({"SSCARD_DATA_DIR": str(self.folder / "data"), "PYTHONUNBUFFERED": "1"})
        self._log = (self.folder / "service.log").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "--json", "serve", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        return self

    def log_tail(self, lines: int = 12) -> str:
        """The service log's last lines that are not a successful operation (error ids and
        reader names: the service logs no card data and no PINs)."""
        path = self.folder / "service.log"
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if not line.endswith(": ok")]
        return "\n".join(kept[-lines:])

    def wait_ready(self) -> None:
        """Read the JSON start-up summary (the service then accepts connections)."""
        process = self._process
        if process is None or process.stdout is None:
            raise BenchSetupError("the service process was not started")
        timeout = float(load_data("service")["requests"]["start_timeout"])
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchSetupError(f"sscard serve printed no addresses within {timeout:.0f} s")
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise BenchSetupError(
                        f"sscard serve ended with status {process.wait()}: {self.log_tail()}"
                    )
                buffer += chunk
        try:
            summary = json.loads(buffer.split(b"\n", 1)[0])
            self.api = str(summary["api"]).removesuffix("/api/v1/")
            self.national = str(summary["national"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchSetupError("sscard serve printed an unexpected start-up summary") from exc

    def check_running(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise BenchSetupError(
                f"sscard serve exited with status {self._process.returncode}: {self.log_tail()}"
            )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

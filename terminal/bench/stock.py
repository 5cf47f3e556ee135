"""The stock vsmartcard VirtualICC as a benchmark anchor, in its own process.

Debian's python3-virtualsmartcard is a library for the system interpreter,
installed off ``sys.path``; :mod:`terminal.bench.vicc_launcher` runs it with
``/usr/bin/python3`` and works around its Python 3 bugs.  This class starts
that process for one vpcd port and stops it (only it: the process it started,
by its own handle).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from terminal.bench import vicc_launcher
from terminal.bench._data import load_data
from terminal.bench.errors import BenchSetupError

__all__ = ["StockVicc"]


class StockVicc:
    """``with StockVicc(port):`` -> the stock card is connected to vpcd on ``port``."""

    def __init__(self, port: int, *, host: str = "127.0.0.1") -> None:
        row = load_data("cards")["stock"]
        self.python = Path(str(row["python"]))
        self.library = Path(str(row["library"]))
        self.card_type = str(row["card_type"])
        self.port = port
        self.host = host
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def check_installed(self) -> None:
        if not self.python.exists():
            raise BenchSetupError(f"the system interpreter {self.python} is missing")
        if not (self.library / "virtualsmartcard" / "VirtualSmartcard.py").exists():
            raise BenchSetupError(
                f"the stock VirtualICC is not installed under {self.library} "
                "(Debian package python3-virtualsmartcard; run scripts/setup)"
            )

    def start(self) -> StockVicc:
        self.check_installed()
        command = [
            str(self.python),
            str(Path(vicc_launcher.__file__)),
            "--port",
            str(self.port),
            "--host",
            self.host,
            "--library",
            str(self.library),
            "--type",
            self.card_type,
        ]
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def check_running(self) -> None:
        """Raise with the launcher's output if the process has ended."""
        if self._process is not None and self._process.poll() is not None:
            raise BenchSetupError(
                f"the stock VirtualICC exited with status {self._process.returncode}: {self.output()}"
            )

    def output(self) -> str:
        """The end of the launcher's output (it prints only its own messages)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-2000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> StockVicc:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

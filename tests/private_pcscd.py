"""A private pcscd beside the shared one: for tests that restart or kill
pcscd, and for stock tools that cannot watch the shared 16-reader pcscd
(``pcsc_scan`` asks for 16 readers + the PnP pseudo-reader at once, above
pcsc-lite's limit of 16, and fails with "Invalid parameter given").

pcscd 1.9.9 always listens on /run/pcscd/pcscd.comm, so a second daemon runs
in its own mount namespace (``unshare --mount``) where /run/pcscd is a bind
mount of a temporary directory: its socket appears there, and a client
reaches it with ``PCSCLITE_CSOCK_NAME``.  Its vpcd reader listens on its own
TCP ports (``port``, ``port + 1``), away from the shared stack's 35963-35978.
Only the process started here is ever signalled.  Each user picks its own
port (``VPCD_BASE_PORT + 40`` terminal, ``+ 44`` emulator, ``+ 48``
reliability) so areas never share a private reader.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from emulator.stack import VPCD_BASE_PORT, VPCD_DRIVER, VpcdEntry, reader_conf

FRIENDLY_NAME = "sscard private PCD"
SECOND_NAME = "sscard unplugged PCD"
PRIVATE_PORT = VPCD_BASE_PORT + 40


class NamespacedPcscd:
    """A pcscd in its own mount namespace, serving the vpcd entries that
    :meth:`_reader_conf` names; subclasses choose the entries."""

    conf_name = "sscard-private-vpcd"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.sock_dir = run_dir / "run"
        self.conf_dir = run_dir / "reader.conf.d"
        self.log_path = run_dir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / "pcscd.comm"

    @property
    def client_env(self) -> dict[str, str]:
        """The environment of a client process (pcsc_scan, opensc-tool, a
        service under test) of this daemon."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _entries(self) -> tuple[tuple[VpcdEntry, Path], ...]:
        """The vpcd entries with their driver files (each entry needs its own
        copy: the driver keeps its slots in globals)."""
        raise NotImplementedError

    def _launch(self, deadline: float) -> None:
        entries = self._entries()
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / self.conf_name).write_text(
            reader_conf(tuple(e for e, _ in entries), tuple(d for _, d in entries)), encoding="ascii"
        )
        for stale in self.sock_dir.iterdir():
            stale.unlink()
        script = (
            f"mount --bind '{self.sock_dir}' /run/pcscd && exec pcscd --foreground --config '{self.conf_dir}'"
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        end = time.monotonic() + deadline
        while not self._accepting():
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"private pcscd exited: {tail}")
            if time.monotonic() > end:
                raise RuntimeError("private pcscd did not open its socket")
            time.sleep(0.02)
        for entry, _ in entries:
            while not _listening(entry.port):
                if time.monotonic() > end:
                    raise RuntimeError(f"the private vpcd port {entry.port} did not open")
                time.sleep(0.02)

    def _driver_copy(self, index: int) -> Path:
        """The vpcd driver for entry ``index`` (0: the installed file)."""
        if index == 0:
            return VPCD_DRIVER
        drivers = self.run_dir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        copy = drivers / f"libifdvpcd-{index}.so"
        source = VPCD_DRIVER.read_bytes()
        if not copy.exists() or copy.read_bytes() != source:
            copy.write_bytes(source)
        return copy

    def _accepting(self) -> bool:
        if not self.socket_path.exists():
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket_path))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def kill(self) -> None:
        """SIGKILL: pcscd crashes (no clean-up, stale socket left behind)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _listening(port: int) -> bool:
    """True when a socket listens on TCP ``port`` (read from /proc: a probe
    connection would look like a card to vpcd)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


class PrivatePcscd(NamespacedPcscd):
    """One vpcd entry on ``port`` (two readers), optionally a second one."""

    def __init__(self, run_dir: Path, port: int = PRIVATE_PORT) -> None:
        super().__init__(run_dir)
        self.port = port
        self._second_entry = False

    @property
    def slot(self) -> int:
        """The VpcdLink slot number of the first private reader (port - 35963)."""
        return self.port - VPCD_BASE_PORT

    @property
    def reader(self) -> str:
        return f"{FRIENDLY_NAME} 00 00"

    @property
    def second_reader(self) -> str:
        """The first reader of the second entry (``start(second_entry=True)``)."""
        return f"{SECOND_NAME} 00 00"

    def _entries(self) -> tuple[tuple[VpcdEntry, Path], ...]:
        first = ((VpcdEntry(FRIENDLY_NAME, self.port), self._driver_copy(0)),)
        if not self._second_entry:
            return first
        return (*first, (VpcdEntry(SECOND_NAME, self.port + 2), self._driver_copy(1)))

    def start(self, deadline: float = 15.0, *, second_entry: bool = False) -> None:
        """Start the daemon; ``second_entry`` adds a second vpcd entry (two more
        readers, ports ``port + 2``/``+ 3``), so that a restart without it looks
        to clients like readers unplugged."""
        self._second_entry = second_entry
        self._launch(deadline)

"""A private pcscd for the infrastructure and soak tests, never the shared one.

pcscd 1.9.9 always listens on /run/pcscd/pcscd.comm, so this daemon runs in
its own mount namespace (``unshare --mount``) where /run/pcscd is a bind
mount of a temporary directory; a client process reaches it with
``PCSCLITE_CSOCK_NAME`` (the service under test runs as such a child
process).  Its vpcd readers listen on their own TCP ports, 35963 + 48 ..
35963 + 55 ("slots" 48-55 for :class:`emulator.vpcd.VpcdLink`), away from
the shared stack (35963 + 0..15) and the other areas' private daemons
(+ 40/41 terminal, + 44/45 emulator).

Only the process started here is ever signalled: :meth:`PrivatePcscd.kill`
(SIGKILL, a crash) and :meth:`PrivatePcscd.stop` (SIGTERM, an orderly stop).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from emulator.stack import VPCD_BASE_PORT, VPCD_DRIVER, VpcdEntry, reader_conf

FIRST_SLOT = 48
MAX_ENTRIES = 4
FRIENDLY = "sscard reliability PCD"


class PrivatePcscd:
    """pcscd with ``entries`` vpcd drivers of two slots each (slots 48, 49, 50 ...)."""

    def __init__(self, run_dir: Path, entries: int = 3) -> None:
        if not 1 <= entries <= MAX_ENTRIES:
            raise ValueError(f"entries must be 1..{MAX_ENTRIES}")
        self.run_dir = run_dir
        self.entries = tuple(
            VpcdEntry(f"{FRIENDLY} {chr(ord('A') + i)}", VPCD_BASE_PORT + FIRST_SLOT + 2 * i)
            for i in range(entries)
        )
        self.sock_dir = run_dir / "run"
        self.conf_dir = run_dir / "reader.conf.d"
        self.log_path = run_dir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / "pcscd.comm"

    @property
    def slots(self) -> list[int]:
        """VpcdLink slot numbers of the readers, in order."""
        return [FIRST_SLOT + i for i in range(2 * len(self.entries))]

    def reader(self, slot: int) -> str:
        """The PC/SC name of the reader of ``slot``."""
        index = slot - FIRST_SLOT
        if not 0 <= index < 2 * len(self.entries):
            raise ValueError(f"slot {slot} is not a reader of this daemon")
        return f"{self.entries[index // 2].friendly_name} 00 {index % 2:02X}"

    @property
    def client_env(self) -> dict[str, str]:
        """The environment of a PC/SC client process that talks to this daemon."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, deadline: float = 15.0) -> None:
        if self.running:
            return
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "sscard-reliability-vpcd").write_text(
            reader_conf(self.entries, self._driver_copies()), encoding="ascii"
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
        for entry in self.entries:
            self._wait_port(entry.port, end)

    def _driver_copies(self) -> tuple[Path, ...]:
        """One vpcd driver file per entry: the driver keeps its slots in globals,
        so entries sharing one loaded library would share slots (as in
        :meth:`emulator.stack.PcscStack._driver_copies`)."""
        drivers = self.run_dir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        source = VPCD_DRIVER.read_bytes()
        paths = [VPCD_DRIVER]
        for index in range(1, len(self.entries)):
            copy = drivers / f"libifdvpcd-{index}.so"
            if not copy.exists() or copy.read_bytes() != source:
                copy.write_bytes(source)
            paths.append(copy)
        return tuple(paths)

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

    @staticmethod
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

    def _wait_port(self, port: int, end: float) -> None:
        while not self._listening(port):
            if time.monotonic() > end:
                raise RuntimeError(f"the private vpcd port {port} did not open")
            time.sleep(0.02)

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

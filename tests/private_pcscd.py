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
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from emulator.stack import VPCD_BASE_PORT, VPCD_DRIVER, VpcdEntry, reader_conf

FRIENDLY_NAME = "sscard private PCD"
SECOND_NAME = "sscard unplugged PCD"
PRIVATE_PORT = VPCD_BASE_PORT + 40


class PrivatePcscd:
    def __init__(self, run_dir: Path, port: int = PRIVATE_PORT) -> None:
        self.run_dir = run_dir
        self.port = port
        self.sock_dir = run_dir / "run"
        self.conf_dir = run_dir / "reader.conf.d"
        self.log_path = run_dir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / "pcscd.comm"

    @property
    def slot(self) -> int:
        """The VpcdLink slot number of the first private reader (port - 35963)."""
        return self.port - VPCD_BASE_PORT

    @property
    def reader(self) -> str:
        return f"{FRIENDLY_NAME} 00 00"

    @property
    def client_env(self) -> dict[str, str]:
        """The environment of a client process (pcsc_scan, opensc-tool) of this daemon."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    @property
    def second_reader(self) -> str:
        """The first reader of the second entry (``start(second_entry=True)``)."""
        return f"{SECOND_NAME} 00 00"

    def start(self, deadline: float = 15.0, *, second_entry: bool = False) -> None:
        """Start the daemon; ``second_entry`` adds a second vpcd entry (two more
        readers, ports ``port + 2``/``+ 3``), so that a restart without it looks
        to clients like readers unplugged."""
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        entries = [VpcdEntry(FRIENDLY_NAME, self.port)]
        drivers = [VPCD_DRIVER]
        if second_entry:
            copy = self.run_dir / "libifdvpcd-second.so"  # each entry needs its own driver copy
            if not copy.exists():
                shutil.copyfile(VPCD_DRIVER, copy)
            entries.append(VpcdEntry(SECOND_NAME, self.port + 2))
            drivers.append(copy)
        (self.conf_dir / "sscard-private-vpcd").write_text(
            reader_conf(tuple(entries), tuple(drivers)), encoding="ascii"
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
        end = time.monotonic() + deadline
        while not self._accepting():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"private pcscd exited: {self.log_path.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > end:
                raise RuntimeError("private pcscd did not open its socket")
            time.sleep(0.02)
        self._wait_port(end)

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

    def _wait_port(self, end: float) -> None:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError("the private vpcd port did not open") from None
                time.sleep(0.02)

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

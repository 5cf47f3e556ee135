"""A private pcscd with one vpcd entry (two readers), for stock tools that
cannot watch the shared 16-reader pcscd.

``pcsc_scan`` watches every reader plus the PnP pseudo-reader in one
SCardGetStatusChange call; with 16 readers that is 17 states, above
pcsc-lite's PCSCLITE_MAX_READERS_CONTEXTS (16), and the call fails with
"Invalid parameter given".  The private daemon runs in its own mount
namespace (``unshare --mount``) where /run/pcscd is a bind mount of a
temporary directory; clients reach it with ``PCSCLITE_CSOCK_NAME``.  Its
vpcd listens on TCP 35963 + 44 and + 45, outside the shared stack's ports
(and the terminal area's private ports + 40/+ 41).  Only the process
started here is ever signalled.  A virtual card reaches the private vpcd
with ``VirtualSlot(44, card).insert()``, which retries the connection
until vpcd listens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from emulator.stack import VPCD_BASE_PORT, VPCD_DRIVER, VpcdEntry, reader_conf

FRIENDLY_NAME = "sscard emulator PCD"
PRIVATE_SLOT = 44


class PrivatePcscd:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.sock_dir = run_dir / "run"
        self.conf_dir = run_dir / "reader.conf.d"
        self.log_path = run_dir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def slot(self) -> int:
        return PRIVATE_SLOT

    @property
    def reader(self) -> str:
        return f"{FRIENDLY_NAME} 00 00"

    @property
    def client_env(self) -> dict[str, str]:
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.sock_dir / "pcscd.comm")}

    def start(self, deadline: float = 15.0) -> None:
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        entry = VpcdEntry(FRIENDLY_NAME, VPCD_BASE_PORT + PRIVATE_SLOT)
        (self.conf_dir / "sscard-emulator-vpcd").write_text(reader_conf((entry,), (VPCD_DRIVER,)), "ascii")
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
        while not (self.sock_dir / "pcscd.comm").exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"private pcscd exited: {self.log_path.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > end:
                raise RuntimeError("private pcscd did not open its socket")
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

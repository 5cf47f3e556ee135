"""Bring up the PC/SC stack (pcscd + the vsmartcard vpcd driver) for virtual cards.

``PcscStack.start()`` uses a running ``pcscd`` when there is one, and otherwise
starts its own in the foreground (``pcscd -f -c <our reader.conf dir>``) as a
background process whose output goes to a log file.  Either way it then polls
``SCardListReaders`` until the vpcd readers are listed, with a deadline and a
clear error (including the tail of the pcscd log) when they never appear.
``stop()`` stops only a pcscd that this stack started; a pcscd started by
somebody else is never touched.

Our own configuration declares eight vpcd driver entries of two slots each,
giving sixteen slots (pcscd's maximum); slot N listens on TCP 35963 + N.
Each entry loads its own copy of the vpcd driver, because the driver keeps
per-slot state in globals (see :meth:`PcscStack._driver_copies`):

=====  =========  =========================
slot   TCP port   PC/SC reader name
=====  =========  =========================
0      35963      ``Virtual PCD 00 00``
1      35964      ``Virtual PCD 00 01``
2      35965      ``Virtual PCD B 00 00``
3      35966      ``Virtual PCD B 00 01``
...    ...        ``Virtual PCD C`` .. ``H``
=====  =========  =========================

Test areas use disjoint slot ranges (see ``tests/conftest.py``) so that they
never disturb each other's cards.

Reader names are discovered from the live reader list (a system pcscd with
Debian's default ``/etc/reader.conf.d/vpcd`` offers slots 0 and 1 only), so
:meth:`PcscStack.reader_for_slot` is always the name PC/SC really uses.

The stack can also run detached (``scripts/pcscd-up`` / ``scripts/pcscd-down``):
ownership is recorded in ``<run dir>/pcscd.owner`` with the pid and our
config dir, and ``stop`` checks ``/proc/<pid>/cmdline`` before signalling, so
a recycled pid is never killed.  The APDU log option ``-a`` is never used
because it would write PINs to the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger("sscard.emulator.stack")

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_BASE_PORT = 35963


@dataclass(frozen=True)
class VpcdEntry:
    """One vpcd driver instance in reader.conf: two slots from ``port``."""

    friendly_name: str
    port: int
    slots: int = 2


#: Our reader.conf: slot N of the stack listens on 35963 + N.
OWN_ENTRIES: tuple[VpcdEntry, ...] = (
    VpcdEntry("Virtual PCD", VPCD_BASE_PORT),
    *(
        VpcdEntry(f"Virtual PCD {letter}", VPCD_BASE_PORT + 2 * index)
        for index, letter in enumerate("BCDEFGH", start=1)
    ),
)

_READER_NAME = re.compile(r"^(?P<friendly>.+) (?P<reader>[0-9A-F]{2}) (?P<slot>[0-9A-F]{2})$")


class StackError(Exception):
    """The PC/SC stack could not be brought up (message says why and what to do)."""


def default_run_dir() -> Path:
    """Where our pcscd config, log and ownership record live."""
    env = os.environ.get("SSCARD_RUN_DIR")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"sscard-pcsc-{os.getuid()}"


def pcscd_running(sock_path: Path = PCSCD_SOCKET) -> bool:
    """True when a pcscd accepts connections on its socket (stale files don't count)."""
    if not sock_path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(sock_path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def reader_conf(
    entries: tuple[VpcdEntry, ...] = OWN_ENTRIES, libpaths: tuple[Path, ...] | None = None
) -> str:
    """The reader.conf text for our vpcd entries (one driver file per entry)."""
    paths = libpaths or tuple(VPCD_DRIVER for _ in entries)
    blocks = []
    for entry, libpath in zip(entries, paths, strict=True):
        blocks.append(
            f'FRIENDLYNAME "{entry.friendly_name}"\n'
            f"DEVICENAME   /dev/null:0x{entry.port:04X}\n"
            f"LIBPATH      {libpath}\n"
            f"CHANNELID    0x{entry.port:04X}\n"
        )
    return "\n".join(blocks)


def vpcd_slot_map(readers: list[str], entries: tuple[VpcdEntry, ...] = OWN_ENTRIES) -> dict[int, str]:
    """Map stack slot numbers (port - 35963) to the PC/SC reader names listed."""
    by_name = {entry.friendly_name: entry for entry in entries}
    slots: dict[int, str] = {}
    for name in readers:
        match = _READER_NAME.match(name)
        if match is None:
            continue
        entry = by_name.get(match["friendly"])
        if entry is None:
            continue
        slot_in_entry = int(match["slot"], 16)
        if slot_in_entry >= entry.slots:
            continue
        slots[entry.port - VPCD_BASE_PORT + slot_in_entry] = name
    return slots


def _default_lister() -> list[str]:
    from apdu.errors import SscardError
    from apdu.pcsc import list_readers

    try:
        return list_readers()
    except SscardError:
        return []


class PcscStack:
    """pcscd with the vpcd readers, started on demand and stopped only if ours."""

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        min_slots: int = 2,
        deadline: float = 20.0,
        pcscd: str | None = None,
        lister: Callable[[], list[str]] | None = None,
        sock_path: Path = PCSCD_SOCKET,
    ) -> None:
        self.run_dir = run_dir or default_run_dir()
        self.min_slots = min_slots
        self.deadline = deadline
        self.pcscd = pcscd or shutil.which("pcscd") or "/usr/sbin/pcscd"
        self._list = lister or _default_lister
        self.sock_path = sock_path
        self.started = False
        self.detached = False
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._slots: dict[int, str] = {}

    # -- paths ----------------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        return self.run_dir / "reader.conf.d"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "pcscd.log"

    @property
    def owner_path(self) -> Path:
        return self.run_dir / "pcscd.owner"

    # -- public ---------------------------------------------------------------

    @property
    def slots(self) -> dict[int, str]:
        return dict(self._slots)

    @property
    def readers(self) -> list[str]:
        """Reader names indexed by slot (only contiguous slots from 0)."""
        names = []
        for slot in range(len(self._slots)):
            if slot not in self._slots:
                break
            names.append(self._slots[slot])
        return names

    def reader_for_slot(self, slot: int) -> str:
        try:
            return self._slots[slot]
        except KeyError:
            raise StackError(
                f"vpcd slot {slot} is not offered by the running pcscd "
                f"(slots available: {sorted(self._slots)})"
            ) from None

    def port_for_slot(self, slot: int) -> int:
        """The TCP port a virtual card connects to for ``slot``."""
        self.reader_for_slot(slot)
        return VPCD_BASE_PORT + slot

    def restart(self) -> None:
        """Stop and start our own pcscd again (for tests of PC/SC outages)."""
        if not self.started:
            raise StackError("refusing to restart a pcscd this stack did not start")
        self.stop()
        self.start()

    def start(self) -> PcscStack:
        """Make sure pcscd runs and lists at least ``min_slots`` vpcd readers."""
        if not VPCD_DRIVER.exists():
            raise StackError(f"the vsmartcard vpcd driver is missing ({VPCD_DRIVER}); run scripts/setup")
        if not pcscd_running(self.sock_path):
            self._spawn()
        elif not self.detached:
            self._adopt_orphan()
        self._slots = self._wait_for_readers()
        return self

    def stop(self) -> None:
        """Stop pcscd if and only if this stack instance started it."""
        if not self.started or self._pid is None:
            return
        self._stop_pid(self._pid)

    def stop_detached(self) -> bool:
        """Stop a pcscd that ``scripts/pcscd-up`` started (recorded in the owner file).

        A pcscd that a test run or a program started in the foreground is
        stopped only when that run is gone (an orphan of a killed run); while
        its starter lives, it is left alone.
        """
        pid = self._owned_pid()  # discards a record whose pcscd is gone or not ours
        if pid is None:
            return False
        record = self._owner_record()
        if not record.get("detached", False) and not self._starter_gone(record):
            return False
        self._stop_pid(pid)
        return True

    def _stop_pid(self, pid: int) -> None:
        self._terminate(pid)
        self.owner_path.unlink(missing_ok=True)
        self.started = False
        self._pid = None
        self._process = None

    def __enter__(self) -> PcscStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------

    def _spawn(self) -> None:
        if not Path(self.pcscd).exists():
            raise StackError(f"pcscd not found ({self.pcscd}); run scripts/setup")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        conf = reader_conf(OWN_ENTRIES, self._driver_copies())
        (self.conf_dir / "sscard-vpcd").write_text(conf, encoding="ascii")
        log_file = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [self.pcscd, "--foreground", "--config", str(self.conf_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self._pid = self._process.pid
        self.started = True
        self._write_owner()
        log.info("started pcscd pid %d (log %s)", self._pid, self.log_path)

    def _driver_copies(self) -> tuple[Path, ...]:
        """One driver file per vpcd entry.

        The vpcd driver keeps its sockets in a global array indexed by slot
        number only, so two reader entries sharing one loaded library overwrite
        each other's slots.  The dynamic loader maps a file at another path
        (another inode) as a separate object with its own globals, so every
        entry after the first gets its own copy of the library.
        """
        drivers = self.run_dir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        paths = [VPCD_DRIVER]
        source = VPCD_DRIVER.read_bytes()
        for index in range(1, len(OWN_ENTRIES)):
            copy = drivers / f"libifdvpcd-{index}.so"
            if not copy.exists() or copy.read_bytes() != source:
                tmp = copy.with_suffix(".tmp")
                tmp.write_bytes(source)
                os.replace(tmp, copy)
            paths.append(copy)
        return tuple(paths)

    def _wait_for_readers(self) -> dict[int, str]:
        deadline = time.monotonic() + self.deadline
        delay = 0.02
        seen: list[str] = []
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise StackError(
                    f"pcscd exited with status {self._process.returncode} during start-up; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            if pcscd_running(self.sock_path):
                seen = self._list()
                slots = vpcd_slot_map(seen)
                if all(slot in slots for slot in range(self.min_slots)):
                    return slots
            if time.monotonic() >= deadline:
                raise StackError(
                    f"vpcd readers did not appear within {self.deadline:.0f} s "
                    f"(readers seen: {seen or 'none'}); a pcscd without the vpcd driver "
                    f"configured may be running. Log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _adopt_orphan(self) -> None:
        """Take over a pcscd that an earlier, killed test run started and left behind.

        Its owner record says it was not started detached (by ``pcscd-up``),
        so nobody else will stop it; this stack stops it at the end instead.
        """
        pid = self._owned_pid()
        record = self._owner_record()
        if pid is None or record.get("detached", True):
            return
        if not self._starter_gone(record):
            return  # the run that started it is still going and will stop it
        log.info("adopting pcscd pid %d left behind by an interrupted run", pid)
        self._pid = pid
        self.started = True
        self._write_owner()

    @staticmethod
    def _starter_gone(record: dict[str, object]) -> bool:
        """True when the owner record names a starter process that no longer runs."""
        starter = record.get("starter")
        if not isinstance(starter, int) or isinstance(starter, bool):
            return False
        return not Path(f"/proc/{starter}").exists() or _is_zombie(starter)

    def _owner_record(self) -> dict[str, object]:
        try:
            record = json.loads(self.owner_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _write_owner(self) -> None:
        record = {
            "pid": self._pid,
            "conf_dir": str(self.conf_dir),
            "detached": self.detached,
            "starter": os.getpid(),
        }
        self.owner_path.write_text(json.dumps(record), encoding="utf-8")

    def _owned_pid(self) -> int | None:
        try:
            record = json.loads(self.owner_path.read_text(encoding="utf-8"))
            pid = int(record["pid"])
            conf_dir = str(record["conf_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            self.owner_path.unlink(missing_ok=True)
            return None
        if not cmdline or not cmdline[0].endswith(b"pcscd") or conf_dir.encode() not in cmdline:
            self.owner_path.unlink(missing_ok=True)
            return None
        return pid

    def _terminate(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self._process is not None:
                if self._process.poll() is not None:
                    return
            elif not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return
            time.sleep(0.02)
        log.warning("pcscd pid %d ignored SIGTERM; sending SIGKILL", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if self._process is not None:
            self._process.wait(timeout=5.0)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator.stack up|down|status`` (used by scripts/pcscd-up, -down)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m emulator.stack")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--min-slots", type=int, default=len(OWN_ENTRIES) * 2)
    parser.add_argument("--deadline", type=float, default=20.0)
    args = parser.parse_args(argv)
    stack = PcscStack(min_slots=args.min_slots, deadline=args.deadline)
    stack.detached = args.action == "up"
    if args.action == "down":
        owned = stack.stop_detached()
        print("pcscd stopped" if owned else "no pcscd of ours was running; nothing stopped")
        return 0
    if args.action == "status" and not pcscd_running(stack.sock_path):
        print("pcscd is not running")
        return 3
    try:
        stack.start()
    except StackError as exc:
        print(f"error: {exc}")
        return 3
    if stack._owned_pid() is None:
        owner = "not ours; scripts/pcscd-down leaves it alone"
    elif stack._owner_record().get("detached", False):
        owner = "ours; stop it with scripts/pcscd-down"
    else:
        owner = "started by a running test or program, which stops it"
    print(f"pcscd running ({owner}); log {stack.log_path}")
    for slot, name in sorted(stack.slots.items()):
        print(f"  slot {slot:2d}  tcp {VPCD_BASE_PORT + slot}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The control channel of a running card host: one unix socket per host.

Sockets live in ``<run dir>/emulator/`` (run dir: ``$SSCARD_RUN_DIR`` or
``/tmp/sscard-pcsc-<uid>``, :func:`emulator.stack.default_run_dir`), named
``host-<pid>.sock``; the directory is mode 0700 and each socket 0600.

Protocol: the client connects, sends one JSON object and a newline, reads
one JSON object and a newline, and the connection ends.  Requests
(``op``): ``ping``; ``status`` (every slot of the host); ``insert``,
``remove``, ``show`` (``slot``); ``fault`` (``slot``, ``fault``: the fault
mapping of :meth:`emulator.faults.Fault.parse`); ``clear_faults``
(``slot``).  Answers: ``{"ok": true, ...}`` or ``{"ok": false, "error":
{error, message, message_en, national_code, sw?, exit_code}}``.  Card
secrets never travel on this channel (``show`` is the summary of
:mod:`emulator.summary`).

Clients: :func:`request` talks to one socket, :func:`list_hosts` asks every
socket of the directory (removing the files of hosts that no longer run),
:func:`host_for_slot` finds the host running a slot or raises
:class:`emulator.errors.HostNotRunning`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apdu.errors import SscardError
from emulator.errors import ControlError, HostNotRunning, RemoteError, exit_code_for
from emulator.stack import default_run_dir

if TYPE_CHECKING:
    from emulator.runner import CardHost

__all__ = [
    "ControlServer",
    "control_dir",
    "host_for_slot",
    "list_hosts",
    "request",
]

log = logging.getLogger("sscard.emulator.control")

MAX_MESSAGE = 64 * 1024
#: The client waits this long for an answer; the host's own waits (putting a
#: card in: INSERT_TIMEOUT) stay well below it.
CLIENT_TIMEOUT = 10.0
INSERT_TIMEOUT = 3.0
_PREFIX = "host-"


def control_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The directory of the control sockets (created, mode 0700).  A
    directory another user owns is refused: whoever controls it could
    impersonate a host."""
    path = Path(directory) if directory is not None else default_run_dir() / "emulator"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ControlError(f"{path} belongs to another user", detail_zh=f"{path} 属于其他用户")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _read_line(conn: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_MESSAGE:
            raise ControlError("message too long", detail_zh="消息过长")
    return bytes(buf.split(b"\n", 1)[0])


def _error_body(exc: SscardError) -> dict[str, Any]:
    return {**exc.to_dict(), "exit_code": exit_code_for(exc)}


def _slot_of(message: dict[str, Any]) -> int:
    slot = message.get("slot")
    if isinstance(slot, bool) or not isinstance(slot, int):
        raise ControlError("slot must be a number", detail_zh="槽位须为数字")
    return slot


class ControlServer:
    """Serves one host's control socket in a background thread."""

    def __init__(self, host: CardHost, directory: str | os.PathLike[str] | None = None) -> None:
        self.host = host
        self.path = control_dir(directory) / f"{_PREFIX}{os.getpid()}.sock"
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="emulator-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        try:
            raw = _read_line(conn)
            try:
                message = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ControlError("request is not JSON", detail_zh="请求不是 JSON") from None
            if not isinstance(message, dict):
                raise ControlError("request is not a JSON object", detail_zh="请求不是 JSON 对象")
            answer = {"ok": True, **self.handle(message)}
        except SscardError as exc:
            answer = {"ok": False, "error": _error_body(exc)}
        except OSError as exc:
            log.debug("control client went away: %s", type(exc).__name__)
            return
        except Exception as exc:  # the control thread must outlive a failed request
            log.error("control request failed: %s", type(exc).__name__)
            answer = {"ok": False, "error": _error_body(ControlError(type(exc).__name__))}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run one request (see the module docstring) and return the answer fields."""
        op = message.get("op")
        host = self.host
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "status":
            return {"pid": os.getpid(), "slots": host.status()}
        if op not in ("insert", "remove", "show", "fault", "clear_faults"):
            raise ControlError(f"unknown op {op!r}", detail_zh=f"未知操作 {op!r}")
        slot = _slot_of(message)
        virtual = host.slot(slot)
        if op == "insert":
            virtual.insert(timeout=INSERT_TIMEOUT)
            return {"slot": virtual.status()}
        if op == "remove":
            virtual.remove()
            return {"slot": virtual.status()}
        if op == "show":
            return {"slot": virtual.status(), "card": virtual.summary()}
        if op == "clear_faults":
            virtual.clear_faults()
            return {"slot": virtual.status()}
        from emulator.faults import Fault

        spec = message.get("fault")
        if not isinstance(spec, dict):
            raise ControlError("fault must be a JSON object", detail_zh="fault 须为 JSON 对象")
        armed = virtual.arm_fault(Fault.parse(spec))
        return {"fault": armed.to_mapping(), "slot": virtual.status()}


# -- client --------------------------------------------------------------------------------------


def request(
    path: str | os.PathLike[str], message: dict[str, Any], timeout: float = CLIENT_TIMEOUT
) -> dict[str, Any]:
    """Send one request to the socket ``path``; returns the answer of a
    successful request, raises :class:`RemoteError` with the host's error,
    or :class:`ControlError` / ``OSError`` when the channel fails."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode("utf-8") + b"\n")
        raw = _read_line(sock)
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ControlError("answer is not JSON", detail_zh="应答不是 JSON") from None
    if not isinstance(answer, dict):
        raise ControlError("answer is not a JSON object", detail_zh="应答不是 JSON 对象")
    if not answer.get("ok"):
        error = answer.get("error")
        raise RemoteError(error if isinstance(error, dict) else {})
    return answer


def _pid_of(path: Path) -> int | None:
    try:
        return int(path.stem[len(_PREFIX) :])
    except ValueError:
        return None


def list_hosts(directory: str | os.PathLike[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """``(socket path, status answer)`` of every running host; socket files of
    hosts that are gone are removed."""
    hosts: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(control_dir(directory).glob(f"{_PREFIX}*.sock")):
        try:
            hosts.append((path, request(path, {"op": "status"})))
        except (ConnectionRefusedError, FileNotFoundError):
            pid = _pid_of(path)
            if pid is None or not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    path.unlink()
        except (OSError, SscardError) as exc:
            log.warning("control socket %s did not answer: %s", path.name, type(exc).__name__)
    return hosts


def host_for_slot(slot: int, directory: str | os.PathLike[str] | None = None) -> Path:
    """The control socket of the host running ``slot``."""
    for path, status in list_hosts(directory):
        if any(entry.get("slot") == slot for entry in status.get("slots", [])):
            return path
    raise HostNotRunning(f"slot {slot}", detail_zh=f"槽位 {slot}")

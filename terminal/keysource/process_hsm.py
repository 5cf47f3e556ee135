"""A back-end security module in another process, in steps over pipes.

``sscard --key-source hsm --hsm-command CMD`` (and ``[cli] hsm_command``)
starts ``CMD`` once per command and speaks the national HSM step protocol
of :mod:`terminal.keysource.hsm` with it: every key operation of a flow
writes its step-1 request (``FLAG|ADDR|FACTOR|DATA|...|``) as one line on
the command's standard input and reads the module's answer (``CRYPTOGRAM|``,
``MAC|``, ``0|`` or a national error code such as ``-24|``) as one line from
its standard output.  A site connects its hardware module with a small
adapter program; :mod:`terminal.keysource.hsm_server` is the software
module as such a program (tests and small sites).

Requests may contain a PIN block (MACs over PIN commands): they go only to
the module's pipe, never to a log.  A command that cannot be started, that
ends, or that does not answer within ``answer_timeout`` seconds
(``terminal/data/keysource.toml`` ``[hsm_process]``) is
:class:`~terminal.errors.HsmUnavailable` (-1020, exit 9); the module is then
stopped, so a late answer can never be taken for the next request's.
"""

from __future__ import annotations

import logging
import queue
import shlex
import subprocess
import threading
from collections.abc import Sequence
from typing import IO

from apdu.errors import InvalidInput
from terminal._data import load_data
from terminal.errors import HsmUnavailable

__all__ = ["ProcessHsm", "command_argv"]

log = logging.getLogger("sscard.keysource")


def _settings() -> dict[str, float]:
    table = load_data("keysource")["hsm_process"]
    return {name: float(value) for name, value in table.items()}


def command_argv(command: str | Sequence[str]) -> list[str]:
    """The argument vector of a module command (a string is split as a shell would,
    without running a shell); an empty command is :class:`InvalidInput` (-14)."""
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError:
            raise InvalidInput("security module command: unbalanced quotes", kind="parameter") from None
    else:
        argv = [str(part) for part in command]
    if not argv or not argv[0].strip():
        raise InvalidInput("security module command: empty", kind="parameter")
    return argv


class ProcessHsm:
    """:class:`~terminal.keysource.hsm.HsmModule` answered by a child process."""

    def __init__(self, command: str | Sequence[str], *, answer_timeout: float | None = None) -> None:
        settings = _settings()
        self.argv = command_argv(command)
        self.answer_timeout = settings["answer_timeout"] if answer_timeout is None else answer_timeout
        self._close_timeout = settings["close_timeout"]
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self.requests = 0
        try:
            self._process: subprocess.Popen[str] | None = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="ascii",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise HsmUnavailable(
                f"security module command {self.argv[0]!r} cannot be started ({reason})"
            ) from None
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=self._pump, args=(stdout,), name="sscard-hsm-process", daemon=True).start()

    def __repr__(self) -> str:
        return f"ProcessHsm({self.argv[0]!r}, requests={self.requests})"

    def _pump(self, stdout: IO[str]) -> None:
        try:
            for line in stdout:
                self._answers.put(line.rstrip("\r\n"))
        finally:
            self._answers.put(None)
            stdout.close()

    def _fail(self, reason: str) -> HsmUnavailable:
        self._stop()
        return HsmUnavailable(f"security module {self.argv[0]!r}: {reason}")

    def process(self, request: str) -> str:
        """Send one step-1 request; the module's answer line (without its newline)."""
        if "\n" in request or "\r" in request:
            raise InvalidInput("security module request: one line expected", kind="parameter")
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                raise self._fail("the module is not running")
            assert process.stdin is not None
            self.requests += 1
            try:
                process.stdin.write(request + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                raise self._fail("the module closed its input") from None
            try:
                answer = self._answers.get(timeout=self.answer_timeout)
            except queue.Empty:
                raise self._fail(f"no answer within {self.answer_timeout:g} s") from None
            if answer is None:
                raise self._fail("the module ended without answering")
            return answer

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                log.debug("security module input already closed")
        try:
            process.wait(timeout=self._close_timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=self._close_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """End the module: its input is closed (it should exit), then it is stopped."""
        with self._lock:
            self._stop()

"""Run a ReaderWatcher and print its events as JSON lines until stdin closes.

Started by test_terminal_watch.py with PCSCLITE_CSOCK_NAME pointing at a
private pcscd (the PC/SC client library reads it once per process).  Lines
on stdin drive a card session in the same process, to show that sessions
too come through a pcscd restart: ``open READER`` opens one and reads the
basic information, ``read`` reads it again on the open session; each
prints ``{"event": "session", ...}`` with the card number or the error.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from apdu.errors import SscardError
from terminal import flows
from terminal.session import CardSession
from terminal.watch import ReaderWatcher

_lock = threading.Lock()


def _print(payload: dict[str, Any]) -> None:
    with _lock:
        print(json.dumps(payload, ensure_ascii=False), flush=True)


class _Sessions:
    def __init__(self) -> None:
        self.session: CardSession | None = None

    def run(self, command: str) -> None:
        verb, _, reader = command.partition(" ")
        try:
            if verb == "open":
                if self.session is not None:
                    self.session.close()
                self.session = CardSession.open(reader)
            if self.session is None:
                raise RuntimeError("no session")
            number = flows.read_basic(self.session).card_number
            _print({"event": "session", "command": verb, "card_number": number})
        except SscardError as exc:
            _print({"event": "session", "command": verb, **exc.to_dict()})


def main() -> int:
    watcher = ReaderWatcher(poll_ms=200, retry_interval=0.2)
    sessions = _Sessions()

    def commands() -> None:
        for line in sys.stdin:
            sessions.run(line.strip())
        watcher.stop()

    threading.Thread(target=commands, daemon=True).start()
    for event in watcher.events():
        _print(event.to_dict())
    _print({"event": "stopped"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

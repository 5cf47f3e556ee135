"""One operation per card at a time: a first-come first-served queue per reader.

Every operation that talks to a card takes a ticket for its reader (the card
in it) and runs when its number is served; later requests wait in order,
never interleaved.  A waiter that gives up (``queue_wait_seconds``) raises
:class:`~terminal.service.errors.CardBusy` and its ticket is skipped.  A
ticket may be released from another thread than the one that took it (an
``_HSM_Step`` sequence holds the card across several WebSocket messages).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from terminal.service.errors import CardBusy

__all__ = ["CardQueue", "Ticket"]


@dataclass
class _Line:
    next_number: int = 0
    serving: int = 0
    abandoned: set[int] = field(default_factory=set)
    waiting: int = 0


class Ticket:
    """The right to use one reader's card until :meth:`release`."""

    def __init__(self, queue: CardQueue, key: str, number: int) -> None:
        self._queue = queue
        self.key = key
        self.number = number
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._queue._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CardQueue:
    """FIFO queues keyed by reader name (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lines: dict[str, _Line] = {}

    def acquire(self, key: str, timeout: float) -> Ticket:
        """Wait (at most ``timeout`` seconds) for the card in reader ``key``."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            line = self._lines.setdefault(key, _Line())
            number = line.next_number
            line.next_number += 1
            line.waiting += 1
            try:
                while line.serving != number:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        line.abandoned.add(number)
                        raise CardBusy(f"{key}: another operation holds the card")
                    self._cond.wait(left)
            finally:
                line.waiting -= 1
            return Ticket(self, key, number)

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            line = self._lines[ticket.key]
            line.serving = ticket.number + 1
            while line.serving in line.abandoned:
                line.abandoned.discard(line.serving)
                line.serving += 1
            if line.serving == line.next_number and line.waiting == 0:
                del self._lines[ticket.key]
            self._cond.notify_all()

    def busy(self, key: str) -> bool:
        """True while an operation holds the card in reader ``key``."""
        with self._cond:
            line = self._lines.get(key)
            return line is not None and line.serving < line.next_number

    def waiting(self, key: str) -> int:
        with self._cond:
            line = self._lines.get(key)
            return 0 if line is None else line.waiting

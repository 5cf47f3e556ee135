"""PIN attempts rate-limited per card.

The card itself blocks the PIN after three wrong tries; the service adds a
guard against a script that burns tries (or probes PINs across resets and
unblocks): at most ``attempts`` PIN attempts (verify, change) per card within
``window`` seconds, and after a wrong PIN the next attempt on that card waits
``failure_delay`` seconds (doubling with each further failure in the window).
A refused attempt raises :class:`~terminal.service.errors.PinRateLimited`
with ``retry_after`` and never reaches the card.  Cards are keyed by their
card identification code; cards idle for a window are forgotten, at most
once per window from :meth:`PinRateLimiter.check`, so the table holds only
the cards of the last two windows however many cards the service sees.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from terminal.service.errors import PinRateLimited

__all__ = ["PinRateLimiter"]


@dataclass
class _CardAttempts:
    times: deque[float] = field(default_factory=deque)
    failures: int = 0
    not_before: float = 0.0


class PinRateLimiter:
    """See the module docstring; ``clock`` is ``time.monotonic`` unless given."""

    def __init__(
        self,
        *,
        attempts: int,
        window: float,
        failure_delay: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.failure_delay = failure_delay
        self._clock = clock
        self._cards: dict[str, _CardAttempts] = {}
        self._lock = threading.Lock()
        self._pruned = clock()

    @property
    def tracked(self) -> int:
        """Number of cards in the table."""
        with self._lock:
            return len(self._cards)

    def check(self, card: str) -> None:
        """Count one attempt on ``card``, or raise PinRateLimited."""
        now = self._clock()
        with self._lock:
            if now - self._pruned >= self.window:
                self._forget_idle(now)
            entry = self._cards.setdefault(card, _CardAttempts())
            while entry.times and entry.times[0] <= now - self.window:
                entry.times.popleft()
            if not entry.times:
                entry.failures = 0
            if now < entry.not_before:
                raise PinRateLimited(
                    "wait after a wrong PIN before the next attempt", retry_after=entry.not_before - now
                )
            if len(entry.times) >= self.attempts:
                retry = entry.times[0] + self.window - now
                raise PinRateLimited("PIN attempt limit of the window reached", retry_after=retry)
            entry.times.append(now)

    def failed(self, card: str) -> None:
        """A wrong PIN on ``card``: the next attempt waits."""
        now = self._clock()
        with self._lock:
            entry = self._cards.setdefault(card, _CardAttempts())
            entry.failures += 1
            delay = self.failure_delay * (2 ** min(entry.failures - 1, 6))
            entry.not_before = now + delay

    def succeeded(self, card: str) -> None:
        """A correct PIN: the failure delay ends (the window count stays)."""
        with self._lock:
            entry = self._cards.get(card)
            if entry is not None:
                entry.failures = 0
                entry.not_before = 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop cards without attempts in the window (bounded memory; lock held)."""
        self._pruned = now
        for card in [k for k, e in self._cards.items() if not e.times or e.times[-1] <= now - self.window]:
            if self._cards[card].not_before <= now:
                del self._cards[card]

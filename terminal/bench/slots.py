"""vpcd slots for the benchmark: which ones it may use, inserting cards, connecting.

The bench is given a list of slots (``--slots``; the tests give 14-15, the
range tests/conftest.py reserves for it).  A slot whose reader already shows
a card belongs to somebody else (another test run on the shared pcscd) and is
never used.  Cards are attached with our ``VpcdLink`` (or by the stock
VirtualICC process) and reached through ``PcscTransport``, the same way every
flow reaches a reader.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from apdu.errors import NoCardError, SscardError
from apdu.pcsc import PcscTransport, reader_states
from emulator.stack import PcscStack, StackError
from emulator.vpcd import VirtualCard, VpcdLink
from terminal.bench.errors import BenchError, BenchSetupError

__all__ = ["SlotPool", "connect_when_present", "inserted", "parse_slots", "wait_until_empty"]

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
MAX_SLOT = 15


def parse_slots(text: str) -> tuple[int, ...]:
    """``"14,15"``, ``"12-15"`` or ``"4-7,14"`` -> sorted unique slot numbers."""
    slots: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            raise BenchError(f"bad slot list {text!r} (use e.g. 14,15 or 12-15)")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low > high or high > MAX_SLOT:
            raise BenchError(f"bad slot range {part.strip()!r} (slots are 0-{MAX_SLOT})")
        slots.update(range(low, high + 1))
    return tuple(sorted(slots))


class SlotPool:
    """Hands out free slots of the allowed list, in order."""

    def __init__(self, stack: PcscStack, allowed: Sequence[int]) -> None:
        self.stack = stack
        self.allowed = tuple(allowed)
        self._taken: set[int] = set()

    def free(self) -> list[int]:
        """Allowed slots offered by pcscd, not taken by us, with no card in them."""
        candidates: list[tuple[int, str]] = []
        for slot in self.allowed:
            if slot in self._taken:
                continue
            try:
                candidates.append((slot, self.stack.reader_for_slot(slot)))
            except StackError:
                continue
        if not candidates:
            return []
        states = {s.name: s for s in reader_states([name for _, name in candidates])}
        return [slot for slot, name in candidates if states[name].empty]

    def available(self) -> int:
        return len(self.free())

    @contextmanager
    def take(self, count: int, purpose: str) -> Iterator[list[int]]:
        free = self.free()
        if len(free) < count:
            raise BenchSetupError(
                f"{purpose} needs {count} free vpcd slot(s) of {list(self.allowed)}; "
                f"free now: {free} (others hold a card)"
            )
        slots = free[:count]
        self._taken.update(slots)
        try:
            yield slots
        finally:
            self._taken.difference_update(slots)


def connect_when_present(reader: str, deadline_s: float = 15.0) -> PcscTransport:
    """Connect to ``reader`` as soon as a card shows up in it."""
    end = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        transport = PcscTransport(reader)
        try:
            transport.connect()
            return transport
        except NoCardError:
            if time.monotonic() >= end:
                raise BenchSetupError(f"no card appeared in {reader} within {deadline_s:.0f} s") from None
        except SscardError as exc:
            if time.monotonic() >= end:
                raise BenchSetupError(f"cannot connect to {reader}: {exc}") from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def wait_until_empty(reader: str, deadline_s: float = 10.0) -> None:
    """Wait until pcscd has noticed that the card left ``reader``."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if reader_states([reader])[0].empty:
            return
        time.sleep(0.02)
    raise BenchSetupError(f"the card in {reader} was not removed within {deadline_s:.0f} s")


@contextmanager
def inserted(card: VirtualCard, slot: int, stack: PcscStack) -> Iterator[VpcdLink]:
    """A card in ``slot`` for the duration of the block (pulled afterwards)."""
    link = VpcdLink(card, slot)
    link.insert()
    try:
        yield link
    finally:
        link.remove()
        wait_until_empty(stack.reader_for_slot(slot))

"""Round-trip latency of one APDU through pcscd + vpcd + pyscard to a card
of a :class:`emulator.runner.CardHost` (what ``sscard emulator latency``
prints; the full comparison with the stock VirtualICC is ``sscard bench``).

Each call is timed on its own with ``time.perf_counter_ns`` after a
warm-up; the result gives the median and p99 (nearest rank) and, for
comparison, the card OS's own ``process()`` time for the same APDU.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from apdu.errors import NoCardError
from apdu.pcsc import PcscTransport, reader_states
from card_model.demo import demo_card_image
from emulator.card_os import CardOS, Interface
from emulator.errors import SlotUnavailable
from emulator.runner import CardHost
from emulator.stack import PcscStack, StackError

__all__ = ["LatencyResult", "measure_latency"]

#: READ RECORD EF05 tag 01 (the card identification code): 18 data bytes + 9000.
DEFAULT_APDU = bytes.fromhex("00B2012C00")
_PRESENCE_DEADLINE = 10.0


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Per-APDU times in microseconds."""

    reader: str
    interface: str
    count: int
    median_us: float
    p99_us: float
    p10_us: float
    mean_us: float
    min_us: float
    max_us: float
    in_process_median_us: float

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _percentile(sorted_ns: list[int], fraction: float) -> float:
    index = max(0, min(len(sorted_ns) - 1, math.ceil(fraction * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000.0


def _wait_present(reader: str, atr: bytes) -> None:
    deadline = time.monotonic() + _PRESENCE_DEADLINE
    while True:
        (state,) = reader_states([reader])
        if state.present and state.atr == atr:
            return
        if time.monotonic() > deadline:
            raise NoCardError(f"{reader}: the virtual card did not appear")
        time.sleep(0.01)


def _time_calls(call: Any, apdu: bytes, count: int) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        call(apdu)
        samples.append(clock() - start)
    samples.sort()
    return samples


def measure_latency(
    slot: int,
    *,
    count: int = 2000,
    warmup: int = 200,
    apdu: bytes = DEFAULT_APDU,
    interface: Interface = "contact",
) -> LatencyResult:
    """Put an in-memory demo card on ``slot`` and time ``count`` round trips."""
    stack = PcscStack(min_slots=slot + 1)
    try:
        stack.start()
    except StackError as exc:
        first = str(exc).splitlines()[0]
        raise SlotUnavailable(first, detail_zh=first) from None
    try:
        reader = stack.reader_for_slot(slot)
        card = CardOS(demo_card_image(), interface=interface)
        with CardHost() as host:
            host.add(slot, card)
            _wait_present(reader, card.atr())
            transport = PcscTransport(reader)
            transport.connect()
            try:
                _time_calls(transport.transmit, apdu, warmup)
                samples = _time_calls(transport.transmit, apdu, count)
            finally:
                transport.disconnect()
        local = _time_calls(CardOS(demo_card_image()).process, apdu, count)
    finally:
        stack.stop()
    return LatencyResult(
        reader=reader,
        interface=interface,
        count=count,
        median_us=statistics.median(samples) / 1000.0,
        p99_us=_percentile(samples, 0.99),
        p10_us=_percentile(samples, 0.10),
        mean_us=statistics.fmean(samples) / 1000.0,
        min_us=samples[0] / 1000.0,
        max_us=samples[-1] / 1000.0,
        in_process_median_us=statistics.median(local) / 1000.0,
    )

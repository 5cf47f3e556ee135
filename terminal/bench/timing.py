"""Timing: interleaved measurement of subjects and their anchors, and statistics.

Every latency figure is measured next to its anchor in the same run: the
subjects take turns in rounds (the order rotates every round), so a burst of
load from other processes on a shared machine hits the anchor and the subject
alike and their ratio stays meaningful.  Each call is timed on its own with
``time.perf_counter_ns``; warm-up calls (imports, caches, TCP slow start,
pcscd's first transmit) are run and discarded before the first round.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from terminal.bench.errors import BenchError

__all__ = ["Plan", "Stats", "Subject", "measure_interleaved", "percentile", "time_calls"]


@dataclass(frozen=True)
class Plan:
    """How much to measure: warm-up calls, rounds, calls per subject per round."""

    warmup: int
    rounds: int
    per_round: int

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.rounds < 1 or self.per_round < 1:
            raise BenchError(f"invalid measurement plan {self}")

    def scaled(self, factor: float) -> Plan:
        """The same plan with ``per_round`` scaled (at least one call)."""
        return Plan(self.warmup, self.rounds, max(1, round(self.per_round * factor)))


@dataclass(frozen=True)
class Subject:
    """One thing to time: ``call`` runs once per sample.

    ``weight`` scales the plan's calls per round for this subject, so that a
    slow anchor (the stock VirtualICC, gmssl) does not dominate the run time
    while still being measured in every round beside the fast subject.
    ``prepare`` runs before every call, untimed (e.g. putting a card back in
    the state a state-changing flow needs).
    """

    name: str
    call: Callable[[], object]
    weight: float = 1.0
    prepare: Callable[[], object] | None = None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (fraction in (0, 1])."""
    if not sorted_values:
        raise BenchError("no samples to take a percentile of")
    if not 0.0 < fraction <= 1.0:
        raise BenchError(f"percentile fraction must be in (0, 1], got {fraction}")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True)
class Stats:
    """Summary of one subject's samples, in microseconds."""

    n: int
    median: float
    p99: float
    mean: float
    min: float
    max: float
    p10: float
    p90: float
    stdev: float

    @classmethod
    def of_ns(cls, samples_ns: Sequence[int]) -> Stats:
        if not samples_ns:
            raise BenchError("no samples were taken")
        values = sorted(ns / 1000.0 for ns in samples_ns)
        return cls(
            n=len(values),
            median=float(statistics.median(values)),
            p99=percentile(values, 0.99),
            mean=float(statistics.fmean(values)),
            min=values[0],
            max=values[-1],
            p10=percentile(values, 0.10),
            p90=percentile(values, 0.90),
            stdev=float(statistics.pstdev(values)),
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "p99": self.p99,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "p10": self.p10,
            "p90": self.p90,
            "stdev": self.stdev,
        }


def time_calls(
    call: Callable[[], object],
    count: int,
    into: list[int],
    prepare: Callable[[], object] | None = None,
) -> None:
    """Time ``count`` calls one by one (nanoseconds appended to ``into``)."""
    clock = time.perf_counter_ns
    for _ in range(count):
        if prepare is not None:
            prepare()
        start = clock()
        call()
        into.append(clock() - start)


def measure_interleaved(subjects: Sequence[Subject], plan: Plan) -> dict[str, list[int]]:
    """Warm every subject up, then time them in rotating rounds.

    Returns the raw samples (nanoseconds) per subject name.  Round ``r``
    starts with subject ``r mod len(subjects)``.
    """
    if not subjects:
        raise BenchError("nothing to measure")
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise BenchError(f"duplicate subject names: {names}")
    for subject in subjects:
        for _ in range(max(1, round(plan.warmup * subject.weight)) if plan.warmup else 0):
            if subject.prepare is not None:
                subject.prepare()
            subject.call()
    samples: dict[str, list[int]] = {s.name: [] for s in subjects}
    count = len(subjects)
    for round_index in range(plan.rounds):
        for offset in range(count):
            subject = subjects[(round_index + offset) % count]
            calls = max(1, round(plan.per_round * subject.weight))
            time_calls(subject.call, calls, samples[subject.name], subject.prepare)
    return samples

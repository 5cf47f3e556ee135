"""Interleaving, warm-up, statistics and ratios (no clocks asserted)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from terminal.bench.errors import BenchError
from terminal.bench.flows import minimum_apdus
from terminal.bench.report import (
    Figure,
    Ratio,
    SectionResult,
    Target,
    latency_figure,
    rate_figure,
    target_for,
)
from terminal.bench.service import run_concurrently, throughput_figure
from terminal.bench.table import format_value
from terminal.bench.timing import Plan, Stats, Subject, measure_interleaved, percentile


def test_rounds_rotate_and_weights_scale_the_calls() -> None:
    order: list[str] = []
    subjects = [
        Subject("a", lambda: order.append("a")),
        Subject("b", lambda: order.append("b")),
        Subject("slow", lambda: order.append("s"), weight=0.5),
    ]
    samples = measure_interleaved(subjects, Plan(warmup=2, rounds=3, per_round=2))
    warm = order[: 2 + 2 + 1]
    assert warm == ["a", "a", "b", "b", "s"]
    timed = "".join(order[5:])
    # round 0 starts with a, round 1 with b, round 2 with the slow one
    assert timed == "aabbs" + "bbsaa" + "saabb"
    assert {k: len(v) for k, v in samples.items()} == {"a": 6, "b": 6, "slow": 3}
    assert all(ns >= 0 for values in samples.values() for ns in values)


def test_no_warmup_means_no_untimed_calls() -> None:
    calls: list[int] = []
    samples = measure_interleaved([Subject("x", lambda: calls.append(1))], Plan(0, 2, 3))
    assert len(calls) == len(samples["x"]) == 6


def test_duplicate_or_missing_subjects_are_refused() -> None:
    with pytest.raises(BenchError):
        measure_interleaved([], Plan(0, 1, 1))
    with pytest.raises(BenchError, match="duplicate"):
        measure_interleaved([Subject("x", int), Subject("x", int)], Plan(0, 1, 1))


@pytest.mark.parametrize("plan", [(-1, 1, 1), (0, 0, 1), (0, 1, 0)])
def test_bad_plans_are_refused(plan: tuple[int, int, int]) -> None:
    with pytest.raises(BenchError):
        Plan(*plan)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(BenchError):
        percentile([], 0.5)
    with pytest.raises(BenchError):
        percentile(values, 0.0)


def test_stats_in_microseconds() -> None:
    stats = Stats.of_ns([3000, 1000, 2000, 4000])
    assert stats.n == 4
    assert stats.median == 2.5
    assert stats.min == 1.0 and stats.max == 4.0
    assert stats.mean == 2.5
    assert stats.p99 == 4.0
    with pytest.raises(BenchError):
        Stats.of_ns([])


def test_latency_figure_ratio_both_ways() -> None:
    anchor = latency_figure("apdu.floor", "apdu", "floor", [100_000, 100_000, 100_000])
    slower = latency_figure("apdu.card_os", "apdu", "card", [250_000] * 3, anchor=anchor, meaning="x floor")
    assert slower.value == 250.0
    assert slower.ratio is not None and slower.ratio.value == 2.5
    assert slower.target == target_for("apdu.card_os")
    assert slower.passed is True
    faster = latency_figure("x.fast", "x", "fast", [10_000] * 3, anchor=anchor, invert=True, meaning="faster")
    assert faster.ratio is not None
    assert faster.ratio.numerator == "apdu.floor" and faster.ratio.value == 10.0
    assert faster.target is None and faster.passed is None


def test_rate_figure_is_calls_per_busy_second() -> None:
    anchor = rate_figure("scale.sqlite.commit", "scale", "commit", [1_000_000] * 4)
    assert anchor.value == pytest.approx(1000.0)
    op = rate_figure(
        "scale.sqlite.register", "scale", "reg", [4_000_000] * 2, anchor=anchor, meaning="commits"
    )
    assert op.value == pytest.approx(250.0)
    assert op.ratio is not None and op.ratio.value == pytest.approx(4.0)


def test_target_on_a_ratio_needs_the_ratio() -> None:
    figure = Figure("apdu.card_os", "apdu", "card", "us", 5.0, target=target_for("apdu.card_os"))
    with pytest.raises(BenchError, match="no ratio"):
        _ = figure.passed


def test_target_comparisons() -> None:
    assert Target("<", 3000.0, "value", "t").met_by(2999.0)
    assert not Target("<", 3000.0, "value", "t").met_by(3000.0)
    assert Target(">=", 100.0, "ratio", "t").met_by(100.0)


def test_ratio_needs_a_positive_denominator() -> None:
    with pytest.raises(BenchError):
        Ratio("a", 1.0, "b", 0.0, "")


def test_section_refuses_duplicate_figures() -> None:
    section = SectionResult("apdu")
    section.add(Figure("apdu.a", "apdu", "a", "us", 1.0))
    with pytest.raises(BenchError, match="duplicate"):
        section.add(Figure("apdu.a", "apdu", "a", "us", 2.0))
    with pytest.raises(BenchError):
        section.figure("apdu.b")


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (5.25, "us", "5.2 µs"),
        (250.4, "us", "250 µs"),
        (43_310.0, "us", "43.31 ms"),
        (1998.4, "ops/s", "1,998 ops/s"),
        (7.0, "apdus", "7 APDUs"),
        (683.0, "bytes/op", "683 B/op"),
    ],
)
def test_value_formatting(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_prepare_runs_before_every_call() -> None:
    events: list[str] = []
    subject = Subject("x", lambda: events.append("call"), prepare=lambda: events.append("prep"))
    samples = measure_interleaved([subject], Plan(warmup=1, rounds=2, per_round=1))
    assert events == ["prep", "call"] * 3
    assert len(samples["x"]) == 2


def test_flow_minimum_counts_certificate_reads() -> None:
    der = bytes.fromhex("3082024F") + bytes(0x24F)
    card, psam, commands = minimum_apdus("authenticate", {0xEF0D: der + bytes(2048 - len(der))})
    # 4 fixed card commands + ceil(595 / 256) = 3 READ BINARY
    assert (card, psam) == (7, 2)
    assert "595-byte certificate" in commands[-1]
    card, psam, _ = minimum_apdus("read_basic", {})
    assert (card, psam) == (2, 0)
    # counted entries ({apdus = N, what = ...}) add N each
    card, psam, commands = minimum_apdus("issuance", {})
    assert (card, psam) == (69, 64)
    assert (
        "psam: INIT FOR DESCRYPT + CIPHER WRITE KEY body, for the 9 keys and the PIN (20 APDUs)" in commands
    )


def test_concurrent_callers_run_in_their_own_threads() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def caller(name: str) -> Callable[[], None]:
        def call() -> None:
            with lock:
                seen.append(f"{name}:{threading.current_thread().name}")

        return call

    samples, wall = run_concurrently([caller("a"), caller("b"), caller("c")], 4)
    assert len(samples) == 12 and wall > 0
    assert {entry.split(":")[0] for entry in seen} == {"a", "b", "c"}
    assert len({entry.split(":")[1] for entry in seen}) == 3


def test_concurrent_errors_reach_the_caller() -> None:
    def broken() -> None:
        raise BenchError("wrong answer")

    with pytest.raises(BenchError, match="wrong answer"):
        run_concurrently([broken, lambda: None], 2)


def test_throughput_figure_is_requests_per_wall_second() -> None:
    one = throughput_figure(
        "service.http.readers_1", "one", [2_000_000] * 10, 20_000_000, readers=1, anchor=None
    )
    assert one.unit == "req/s" and one.value == pytest.approx(500.0)
    assert one.stats is not None and one.stats.median == 2000.0
    four = throughput_figure(
        "service.http.readers_4", "four", [4_000_000] * 40, 40_000_000, readers=4, anchor=one
    )
    assert four.value == pytest.approx(1000.0)
    assert four.ratio is not None and four.ratio.value == pytest.approx(2.0)
    assert four.anchor == "service.http.readers_1" and four.details["readers"] == 4

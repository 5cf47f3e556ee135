"""The PNG chart: latency distributions of every timed figure, one panel per section.

Each figure with per-call samples (latencies, and the calls behind a rate)
gets a horizontal box (quartiles, whiskers to the 1st and 99th percentile,
median line) on a logarithmic microsecond axis,
since the figures span the card OS's microseconds to the stock VirtualICC's
tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from terminal.bench.errors import BenchOutputError
from terminal.bench.report import Figure, Results

__all__ = ["write_chart"]


def _timed(figures: Sequence[Figure]) -> list[Figure]:
    return [f for f in figures if f.samples_ns and f.stats is not None]


def _us(figure: Figure) -> str:
    assert figure.stats is not None
    median = figure.stats.median
    return f"{median:,.0f} µs" if median >= 100 else f"{median:,.1f} µs"


def write_chart(results: Results, path: Path) -> bool:
    """Draw the chart; False (and no file) when no section produced latencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, _timed(s.figures)) for name, s in results.sections.items()]
    panels = [(name, figs) for name, figs in panels if figs]
    if not panels:
        return False
    heights = [max(1.2, 0.45 * len(figs) + 0.8) for _, figs in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(15, sum(heights) + 0.8),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
        layout="constrained",
    )
    for ax, (name, figs) in zip(axes[:, 0], panels, strict=True):
        data = [[ns / 1000.0 for ns in f.samples_ns] for f in figs]
        labels = [f"{f.label}  (median {_us(f)})" for f in figs]
        ax.boxplot(
            data,
            orientation="horizontal",
            whis=(1, 99),
            showfliers=False,
            widths=0.6,
            medianprops={"color": "tab:red"},
        )
        ax.set_yticks(range(1, len(figs) + 1), labels, fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title(f"{name}  ({results.mode} run)", fontsize=10, loc="left")
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[-1, 0].set_xlabel("latency per call (µs, log scale); box p25-p75, whiskers p1-p99, red line median")
    cpu = results.machine.get("cpu_model", "?")
    fig.suptitle(
        f"sscard bench {results.started_at} on {cpu}, {results.machine.get('cores', '?')} cores", fontsize=10
    )
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise BenchOutputError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        plt.close(fig)
    return True

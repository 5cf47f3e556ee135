"""The results document: figures, anchors, ratios, targets, sections, machine.

``results.json`` (``format = "sscard-bench"``, ``version = 1``)::

    {"format", "version", "mode": "full"|"smoke", "started_at", "finished_at",
     "duration_s", "note", "machine": {...}, "sections": {NAME: SECTION},
     "summary": [{"id", "label", "value", "unit", "ratio", "target", "pass"}]}

    SECTION = {"status": "ok"|"failed", "duration_s", "load_average_start",
               "load_average_end", "notes": [...], "error": {...}|null,
               "figures": [FIGURE]}

    FIGURE = {"id", "section", "label", "unit", "value", "stats"|null,
              "anchor"|null, "ratio"|null, "target"|null, "pass"|null,
              "details": {...}}

``value`` is the headline number: the median for latencies (unit ``us``),
otherwise a rate (``ops/s``, ``req/s``), a count (``apdus``) or a size
(``bytes/op``).  ``ratio`` is ``numerator.value / denominator.value`` with both
parts and the figures they come from stated, so anyone can recompute it.
``target`` applies to the value or to the ratio; ``pass`` is the informational
comparison with it (null when there is no target).  Targets are data:
``data/targets.toml``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from terminal.bench._data import load_data
from terminal.bench.errors import BenchError, BenchOutputError
from terminal.bench.timing import Stats

__all__ = [
    "FORMAT",
    "VERSION",
    "Figure",
    "Ratio",
    "Results",
    "SectionResult",
    "Target",
    "latency_figure",
    "rate_figure",
    "target_for",
]

FORMAT = "sscard-bench"
VERSION = 1

Comparison = Literal["<=", ">=", "<", ">"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Target:
    """A goal for a figure's value or ratio (informational pass/fail)."""

    op: Comparison
    value: float
    applies_to: Literal["value", "ratio"]
    text: str

    def met_by(self, number: float) -> bool:
        return _OPS[self.op](number, self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "value": self.value, "applies_to": self.applies_to, "text": self.text}


def target_for(figure_id: str) -> Target | None:
    """The target of ``figure_id`` from ``data/targets.toml``, if any."""
    row = load_data("targets").get("targets", {}).get(figure_id)
    if row is None:
        return None
    op = str(row["op"])
    applies_to = str(row["applies_to"])
    if op not in _OPS or applies_to not in ("value", "ratio"):
        raise BenchError(f"data/targets.toml: bad target for {figure_id}")
    return Target(op=op, value=float(row["value"]), applies_to=applies_to, text=str(row["text"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``, each part a figure's value."""

    numerator: str
    numerator_value: float
    denominator: str
    denominator_value: float
    meaning: str

    def __post_init__(self) -> None:
        if not self.denominator_value > 0:
            raise BenchError(f"ratio {self.numerator}/{self.denominator}: denominator is not positive")

    @property
    def value(self) -> float:
        return self.numerator_value / self.denominator_value

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "numerator": {"figure": self.numerator, "value": self.numerator_value},
            "denominator": {"figure": self.denominator, "value": self.denominator_value},
            "meaning": self.meaning,
        }


@dataclass
class Figure:
    """One measured number with its anchor, ratio and target."""

    id: str
    section: str
    label: str
    unit: str
    value: float
    stats: Stats | None = None
    anchor: str | None = None
    ratio: Ratio | None = None
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)
    samples_ns: list[int] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        if self.target.applies_to == "ratio":
            if self.ratio is None:
                raise BenchError(f"figure {self.id}: target on a ratio but no ratio")
            return self.target.met_by(self.ratio.value)
        return self.target.met_by(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "label": self.label,
            "unit": self.unit,
            "value": self.value,
            "stats": self.stats.to_dict() if self.stats else None,
            "anchor": self.anchor,
            "ratio": self.ratio.to_dict() if self.ratio else None,
            "target": self.target.to_dict() if self.target else None,
            "pass": self.passed,
            "details": self.details,
        }


def latency_figure(
    figure_id: str,
    section: str,
    label: str,
    samples_ns: list[int],
    *,
    anchor: Figure | None = None,
    meaning: str = "",
    invert: bool = False,
    details: dict[str, Any] | None = None,
) -> Figure:
    """A latency figure (median, µs) from raw samples, with its ratio to ``anchor``.

    The ratio is ``self / anchor`` (how many times the anchor's time), or with
    ``invert`` ``anchor / self`` (how many times faster than the anchor).
    """
    stats = Stats.of_ns(samples_ns)
    figure = Figure(
        id=figure_id,
        section=section,
        label=label,
        unit="us",
        value=stats.median,
        stats=stats,
        details=dict(details or {}),
        samples_ns=list(samples_ns),
    )
    if anchor is not None:
        figure.anchor = anchor.id
        if invert:
            figure.ratio = Ratio(anchor.id, anchor.value, figure.id, figure.value, meaning)
        else:
            figure.ratio = Ratio(figure.id, figure.value, anchor.id, anchor.value, meaning)
    figure.target = target_for(figure_id)
    return figure


def rate_figure(
    figure_id: str,
    section: str,
    label: str,
    samples_ns: list[int],
    *,
    unit: str = "ops/s",
    anchor: Figure | None = None,
    meaning: str = "",
    details: dict[str, Any] | None = None,
) -> Figure:
    """A rate figure: calls per second of busy time (``n / sum of call times``).

    ``stats`` keep the per-call latencies in µs.  The ratio to a faster
    ``anchor`` is ``anchor / self``: how many anchor calls fit in one call.
    """
    stats = Stats.of_ns(samples_ns)
    total_s = sum(samples_ns) / 1e9
    figure = Figure(
        id=figure_id,
        section=section,
        label=label,
        unit=unit,
        value=len(samples_ns) / total_s,
        stats=stats,
        details=dict(details or {}),
        samples_ns=list(samples_ns),
    )
    if anchor is not None:
        figure.anchor = anchor.id
        figure.ratio = Ratio(anchor.id, anchor.value, figure.id, figure.value, meaning)
    figure.target = target_for(figure_id)
    return figure


@dataclass
class SectionResult:
    """What one section produced (or why it failed)."""

    name: str
    status: Literal["ok", "failed"] = "ok"
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    duration_s: float = 0.0
    load_average_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_average_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def add(self, figure: Figure) -> Figure:
        if any(f.id == figure.id for f in self.figures):
            raise BenchError(f"duplicate figure id {figure.id}")
        self.figures.append(figure)
        return figure

    def figure(self, figure_id: str) -> Figure:
        for figure in self.figures:
            if figure.id == figure_id:
                return figure
        raise BenchError(f"no figure {figure_id} in section {self.name}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "duration_s": self.duration_s,
            "load_average_start": list(self.load_average_start),
            "load_average_end": list(self.load_average_end),
            "notes": list(self.notes),
            "error": self.error,
            "figures": [f.to_dict() for f in self.figures],
        }


@dataclass
class Results:
    """The whole run."""

    mode: Literal["full", "smoke"]
    started_at: str
    machine: dict[str, Any]
    note: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    sections: dict[str, SectionResult] = field(default_factory=dict)

    def figures(self) -> Iterable[Figure]:
        for section in self.sections.values():
            yield from section.figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "mode": self.mode,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "note": self.note,
            "machine": self.machine,
            "sections": {name: s.to_dict() for name, s in self.sections.items()},
            "summary": [
                {
                    "id": f.id,
                    "label": f.label,
                    "value": f.value,
                    "unit": f.unit,
                    "ratio": f.ratio.value if f.ratio else None,
                    "target": f.target.text if f.target else None,
                    "pass": f.passed,
                }
                for f in self.figures()
            ],
        }

    def write_json(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            raise BenchOutputError(f"cannot write {path}: {exc.strerror}") from exc

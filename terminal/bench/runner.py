"""Run the selected sections and write ``results.json``, ``latency.png`` and ``summary.md``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from apdu.errors import SscardError
from sm_crypto.errors import CryptoError
from terminal.bench import apdu, crypto, flows, scale, service
from terminal.bench.chart import write_chart
from terminal.bench.context import BenchContext, Mode
from terminal.bench.errors import BenchError, BenchOutputError
from terminal.bench.machine import load_average, machine_info
from terminal.bench.report import Results, SectionResult
from terminal.bench.table import markdown_table

__all__ = ["CHART_FILE", "RESULTS_FILE", "SECTIONS", "SUMMARY_FILE", "run_bench"]

RESULTS_FILE = "results.json"
CHART_FILE = "latency.png"
SUMMARY_FILE = "summary.md"

SectionRunner = Callable[[BenchContext, SectionResult], None]

#: Sections in the order they run.
SECTIONS: dict[str, SectionRunner] = {
    "apdu": apdu.run,
    "crypto": crypto.run,
    "flows": flows.run,
    "service": service.run,
    "scale": scale.run,
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_section(ctx: BenchContext, name: str) -> SectionResult:
    section = SectionResult(name, load_average_start=load_average())
    start = time.perf_counter()
    ctx.log(f"section {name}: start (load {section.load_average_start[0]})")
    try:
        SECTIONS[name](ctx, section)
    except (SscardError, CryptoError) as exc:
        section.status = "failed"
        if isinstance(exc, SscardError):
            section.error = exc.to_dict()
        else:
            section.error = {"error": exc.error_id, "message": exc.message_zh, "message_en": str(exc)}
        section.error["exit_code"] = int(getattr(exc, "exit_code", 1))
        ctx.log(f"section {name}: FAILED: {exc}")
    section.duration_s = round(time.perf_counter() - start, 3)
    section.load_average_end = load_average()
    ctx.log(f"section {name}: done in {section.duration_s:.1f} s")
    return section


def run_bench(
    *,
    mode: Mode,
    out_dir: Path,
    sections: Sequence[str] | None = None,
    slots: Sequence[int],
    note: str = "",
    log: Callable[[str], None] = lambda message: None,
) -> Results:
    """Run ``sections`` (all by default) and write the outputs into ``out_dir``."""
    chosen = list(sections) if sections else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        raise BenchError(f"unknown section(s) {unknown}; known: {list(SECTIONS)}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchOutputError(f"cannot create {out_dir}: {exc.strerror}") from exc
    machine = machine_info()
    machine["load_average_start"] = list(load_average())
    results = Results(mode=mode, started_at=_now(), machine=machine, note=note)
    ctx = BenchContext(mode=mode, out_dir=out_dir, slots=tuple(slots), log=log)
    start = time.perf_counter()
    try:
        for name in chosen:
            results.sections[name] = _run_section(ctx, name)
    finally:
        ctx.close()
    results.duration_s = round(time.perf_counter() - start, 3)
    results.finished_at = _now()
    machine["load_average_end"] = list(load_average())
    results.write_json(out_dir / RESULTS_FILE)
    write_chart(results, out_dir / CHART_FILE)
    try:
        (out_dir / SUMMARY_FILE).write_text(markdown_table(results) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BenchOutputError(f"cannot write {out_dir / SUMMARY_FILE}: {exc.strerror}") from exc
    return results

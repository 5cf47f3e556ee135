"""A Markdown table of the results (``bench/summary.md``, pasted into docs/performance.md)."""

from __future__ import annotations

from terminal.bench.report import Figure, Results

__all__ = ["format_value", "markdown_table"]


def format_value(value: float, unit: str) -> str:
    """``1234.5 us`` -> ``1.23 ms``; rates and counts with thousands separators."""
    if unit == "us":
        if value >= 1000:
            return f"{value / 1000:.2f} ms"
        return f"{value:.1f} µs" if value < 100 else f"{value:.0f} µs"
    if unit in ("ops/s", "req/s"):
        return f"{value:,.0f} {unit}"
    if unit == "apdus":
        return f"{value:g} APDUs"
    if unit == "bytes/op":
        return f"{value:,.0f} B/op"
    return f"{value:g} {unit}"


def _row(figure: Figure) -> str:
    value = format_value(figure.value, figure.unit)
    per_call = ""
    if figure.stats is not None:
        per_call = f"{format_value(figure.stats.median, 'us')} / {format_value(figure.stats.p99, 'us')}"
    ratio = ""
    if figure.ratio is not None:
        ratio = (
            f"{figure.ratio.value:,.2f}× ({figure.ratio.meaning})"
            if figure.ratio.meaning
            else f"{figure.ratio.value:,.2f}×"
        )
    target = figure.target.text if figure.target else ""
    verdict = {None: "", True: "pass", False: "FAIL"}[figure.passed]
    return (
        f"| {figure.label} | {value} | {per_call} | {figure.anchor or ''} | {ratio} | {target} | {verdict} |"
    )


def markdown_table(results: Results) -> str:
    machine = results.machine
    lines = [
        f"Run {results.started_at} ({results.mode}), {machine.get('cpu_model', '?')}, "
        f"{machine.get('cores', '?')} cores, Python {machine.get('python', '?')}, "
        f"load average {machine.get('load_average_start')} -> {machine.get('load_average_end')}",
        "",
    ]
    for name, section in results.sections.items():
        lines.append(f"### {name}")
        lines.append("")
        if section.status != "ok":
            error = section.error or {}
            lines.append(f"Section failed: {error.get('message_en', '')}")
            lines.append("")
            continue
        lines.append("| figure | value | per call: median / p99 | anchor | ratio | target | |")
        lines.append("|---|---|---|---|---|---|---|")
        lines.extend(_row(f) for f in section.figures)
        lines.append("")
    return "\n".join(lines)

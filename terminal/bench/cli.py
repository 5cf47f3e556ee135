"""``sscard bench``: the click command (registered by the root CLI as ``bench``).

    sscard bench [--smoke] [--only SECTION]... [--out DIR] [--slots 11-15] [--note TEXT]

Writes ``DIR/results.json``, ``DIR/latency.png`` and ``DIR/summary.md``
(default ``DIR`` = ``bench``).  Targets are informational: the exit code is
0 when every section produced its figures, whatever they are; a section that
could not run (no PC/SC stack, no PostgreSQL, no stock VirtualICC, a wrong
answer) gives its error's exit code after the other sections ran and the
files were written.  With the root's ``--json`` the summary goes to stdout as
one JSON object.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from terminal.bench.errors import BenchError
from terminal.bench.runner import CHART_FILE, RESULTS_FILE, SECTIONS, SUMMARY_FILE, run_bench
from terminal.bench.slots import parse_slots
from terminal.bench.table import format_value

__all__ = ["DEFAULT_SLOTS", "bench_command"]

#: vpcd slots the bench may use unless told otherwise: 4 card readers + the PSAM for the
#: service section (the test suite gives 14-15).
DEFAULT_SLOTS = "11-15"
SLOTS_ENV = "SSCARD_BENCH_SLOTS"


def _json_mode(ctx: click.Context) -> bool:
    return bool(getattr(ctx.find_root().obj, "json", False))


def _fail(ctx: click.Context, exc: BenchError) -> None:
    if _json_mode(ctx):
        click.echo(json.dumps(exc.to_dict(), ensure_ascii=False), err=True)
    else:
        click.echo(f"错误：{exc.message_zh}（{exc.error_id}，{exc.national_code}）", err=True)
        click.echo(f"error: {exc}", err=True)
    ctx.exit(exc.exit_code)


@click.command("bench")
@click.option("--smoke", is_flag=True, help="A few iterations of every path (CI); numbers not to be quoted.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(list(SECTIONS)),
    help="Run only this section (repeatable).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench"),
    show_default=True,
    help="Directory for results.json, latency.png and summary.md.",
)
@click.option(
    "--slots",
    default=None,
    metavar="LIST",
    help=f"vpcd slots the bench may use, e.g. 14,15 or 12-15 (default ${SLOTS_ENV} or {DEFAULT_SLOTS}).",
)
@click.option("--note", default="", help="Free text stored in results.json (e.g. 'machine shared').")
@click.pass_context
def bench_command(
    ctx: click.Context, smoke: bool, only: tuple[str, ...], out_dir: Path, slots: str | None, note: str
) -> None:
    """Benchmarks: APDU, crypto, flows, service and registry, each beside its anchor."""
    json_mode = _json_mode(ctx)

    def log(message: str) -> None:
        click.echo(f"bench: {message}", err=True)

    try:
        slot_list = parse_slots(slots or os.environ.get(SLOTS_ENV) or DEFAULT_SLOTS)
        results = run_bench(
            mode="smoke" if smoke else "full",
            out_dir=out_dir,
            sections=list(only) or None,
            slots=slot_list,
            note=note,
            log=log,
        )
    except BenchError as exc:
        _fail(ctx, exc)
        return
    failed = {name: s.error or {} for name, s in results.sections.items() if s.status != "ok"}
    if json_mode:
        payload: dict[str, Any] = {
            "results": str(out_dir / RESULTS_FILE),
            "chart": str(out_dir / CHART_FILE),
            "summary": results.to_dict()["summary"],
            "failed_sections": failed,
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for figure in results.figures():
            ratio = f"  {figure.ratio.value:,.2f}x {figure.ratio.meaning}" if figure.ratio else ""
            verdict = {None: "", True: "  [target met]", False: "  [target missed]"}[figure.passed]
            click.echo(f"{figure.id:48s} {format_value(figure.value, figure.unit):>14s}{ratio}{verdict}")
        click.echo(f"written: {out_dir / RESULTS_FILE}, {out_dir / CHART_FILE}, {out_dir / SUMMARY_FILE}")
    if failed:
        names = ", ".join(failed)
        codes = [int(error.get("exit_code", 1)) for error in failed.values()]
        summary_error = BenchError(f"section(s) {names} failed; the other results were written")
        if json_mode:
            body = summary_error.to_dict() | {"failed_sections": failed}
            click.echo(json.dumps(body, ensure_ascii=False), err=True)
        else:
            for name, error in failed.items():
                click.echo(f"error: section {name}: {error.get('message_en', '')}", err=True)
        ctx.exit(codes[0])

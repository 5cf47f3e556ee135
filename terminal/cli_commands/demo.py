"""``sscard demo``: the main job on the embedded default (:mod:`terminal.demo`).

Each step is printed as it finishes (Chinese and English title, time, the
result's fields); with ``--json`` one object ``{"ok", "seconds",
"card_reader", "psam_reader", "pcscd_started", "journal_entries", "steps":
[{"step", "title", "title_en", "expect", "ok", "seconds", "result",
"error"}], "error"}`` at the end.  A step that does not go as it must ends
the demo with that error's exit code (after the cleanup).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from terminal._data import load_data
from terminal.cli_commands.exits import report_error
from terminal.cli_commands.output import emit, progress
from terminal.cli_commands.render import (
    authenticity_lines,
    basic_lines,
    holder_lines,
    life_cycle_lines,
    national_line,
    pin_operation_lines,
    pin_status_lines,
    status_lines,
)
from terminal.cli_commands.state import cli_state
from terminal.cli_commands.usage import command_help

__all__ = ["demo_command", "step_lines"]

INDENT = 8


def _texts() -> dict[str, Any]:
    table: dict[str, Any] = load_data("demo")["demo"]
    return table


def _stack_lines(result: Mapping[str, Any]) -> list[str]:
    texts = _texts()
    return [
        texts["pcscd_started" if result.get("pcscd") == "started" else "pcscd_running"],
        texts["readers"].format(count=result.get("readers")),
    ]


def _issue_lines(result: Mapping[str, Any]) -> list[str]:
    texts = _texts()
    return [
        texts["card_reader"].format(slot=result["card_slot"], reader=result["card_reader"]),
        texts["psam_reader"].format(
            slot=result["psam_slot"],
            reader=result["psam_reader"],
            terminal=result.get("terminal_number") or "—",
        ),
        texts["card_number"].format(value=result["card_number"]),
    ]


def _indented(render: Callable[..., list[str]]) -> Callable[[Mapping[str, Any]], list[str]]:
    return lambda result: render(result, indent=INDENT)


def _plain(render: Callable[[Mapping[str, Any]], list[str]]) -> Callable[[Mapping[str, Any]], list[str]]:
    return lambda result: [" " * INDENT + line for line in render(result)]


_RENDER: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "stack": _plain(_stack_lines),
    "issue": _plain(_issue_lines),
    "read_basic": _indented(basic_lines),
    "read_holder": _indented(holder_lines),
    "national": _plain(lambda result: [national_line(str(result["national"]))]),
    "authenticate": _indented(authenticity_lines),
    "pin_status": _indented(pin_status_lines),
    "unblock_pin": _indented(pin_operation_lines),
    "reset_pin": _indented(pin_operation_lines),
    "change_pin": _indented(pin_operation_lines),
    "verify_pin": _indented(pin_operation_lines),
    "activate": _indented(life_cycle_lines),
    "card_status": _indented(status_lines),
}


def step_lines(step: Any, number: int, total: int) -> list[str]:
    """The lines of one finished step."""
    texts = _texts()
    mark = "✓" if step.ok else "✗"
    lines = [f"[{number:2d}/{total}] {mark} {step.zh}  {step.en}  ({step.seconds * 1000:.0f} ms)"]
    if step.error is not None:
        sw = f"，SW {step.error['sw']}" if step.error.get("sw") else ""
        message = texts["expected_error"].format(
            message=step.error["message"], code=step.error["national_code"], sw=sw
        )
        lines.append(" " * INDENT + message)
    elif step.result is not None and step.key in _RENDER:
        lines += _RENDER[step.key](step.result)
    if not step.ok:
        lines.append(" " * INDENT + texts["unexpected"].format(expect=step.expect))
    return lines


@click.command(
    "demo",
    help=command_help(
        "demo",
        "默认使用空闲的vpcd槽位；--slot/--psam-slot 指定槽位。"
        "Uses the first free vpcd slots unless --slot / --psam-slot say which.",
    ),
)
@click.option("--slot", type=click.IntRange(0, 15), help="虚拟卡的vpcd槽位。vpcd slot of the card.")
@click.option("--psam-slot", type=click.IntRange(0, 15), help="PSAM的vpcd槽位。vpcd slot of the PSAM.")
@click.pass_context
def demo_command(ctx: click.Context, slot: int | None, psam_slot: int | None) -> None:
    from terminal.demo import run_demo, step_specs

    state = cli_state(ctx)
    texts = _texts()
    total = len(step_specs())
    printed = 0

    def show(step: Any) -> None:
        nonlocal printed
        printed += 1
        for line in step_lines(step, printed, total):
            click.echo(line)

    if not state.json:
        click.echo(texts["title_zh"])
        click.echo(texts["title_en"])
    report = run_demo(
        card_slot=slot,
        psam_slot=psam_slot,
        on_step=None if state.json else show,
        busy=lambda key: progress(ctx, key),
    )
    footer = [
        texts["journal"].format(count=report.journal_entries),
        texts["total"].format(seconds=report.seconds),
    ]
    if report.ok:
        footer.append(f"{texts['done_zh']} / {texts['done_en']}")
    else:
        footer.append(f"{texts['failed_zh']} / {texts['failed_en']}")
    emit(ctx, report.to_dict(), footer)
    if report.failure is not None:
        ctx.exit(report_error(report.failure, json_mode=state.json))

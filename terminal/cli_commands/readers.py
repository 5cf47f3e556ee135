"""``sscard readers``: every PC/SC reader with its kind, card, state and ATR."""

from __future__ import annotations

import click

from terminal.cli_commands.output import display_width, emit, label, progress, text, yes_no
from terminal.cli_commands.state import cli_state
from terminal.cli_commands.usage import command_help

__all__ = ["readers_command"]


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    header = (
        label("reader", "name"),
        label("reader", "kind"),
        label("reader", "card_present"),
        label("reader", "atr"),
    )
    widths = [max(display_width(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(row: tuple[str, str, str, str]) -> str:
        cells = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row[:3])]
        return "  ".join([*cells, row[3]]).rstrip()

    return [line(header), *(line(row) for row in rows)]


@click.command("readers", help=command_help("readers"))
@click.pass_context
def readers_command(ctx: click.Context) -> None:
    """List the readers (``--reader`` narrows the list to the names containing the text)."""
    from terminal.readers import list_readers

    with progress(ctx, "readers"):
        readers = list_readers()
    pattern = cli_state(ctx).reader
    if pattern and pattern.strip():
        needle = pattern.strip().casefold()
        readers = [r for r in readers if needle in r.name.casefold()]
    payload = {"readers": [{**r.to_dict(), "state": r.state} for r in readers]}
    if not readers:
        emit(ctx, payload, [text("words", "no_readers")])
        return
    rows = [
        (
            r.name,
            text("kinds", r.kind),
            yes_no(r.card_present)
            + ("" if r.state in ("empty", "present") else f" ({text('reader_states', r.state)})"),
            r.atr.hex().upper() if r.atr else text("words", "none"),
        )
        for r in readers
    ]
    emit(ctx, payload, _table(rows))

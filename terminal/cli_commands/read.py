"""``sscard read [basic|holder|all] [--national]``: read the card.

``basic`` needs no key; ``holder`` (and ``all``) authenticate with the
reading key on generations 2/3 (key source: the PSAM, or a key file).
``--national`` prints the national ``iReadCardBas`` string instead (SSN and
name empty when no reading key is available, as the national interface does).
JSON: ``{"basic": {...}}``, ``{"holder": {...}}``, both, or ``{"national": "..."}``.
"""

from __future__ import annotations

from typing import Any

import click

from terminal.cli_commands.card import CardOptions, card_options, open_card
from terminal.cli_commands.output import emit, label, progress
from terminal.cli_commands.render import basic_lines, holder_lines, national_line
from terminal.cli_commands.usage import command_help

__all__ = ["read_command"]


@click.command("read", help=command_help("read", "WHAT: basic | holder | all (default all)."))
@click.argument("what", type=click.Choice(["basic", "holder", "all"]), default="all", required=False)
@click.option(
    "--national", is_flag=True, help="输出全国接口 iReadCardBas 字符串。Print the iReadCardBas string."
)
@card_options
@click.pass_context
def read_command(ctx: click.Context, /, what: str, national: bool, **kwargs: Any) -> None:
    from terminal import flows

    options = CardOptions.pop(kwargs)
    with open_card(ctx, options) as card, progress(ctx, "flow"):
        if national:
            value = flows.read_card_bas(card.session)
            emit(ctx, {"national": value}, [national_line(value)])
            return
        payload: dict[str, Any] = {}
        lines: list[str] = []
        if what in ("basic", "all"):
            payload["basic"] = flows.read_basic(card.session).to_dict()
            lines += basic_lines(payload["basic"])
        if what in ("holder", "all"):
            payload["holder"] = flows.read_holder(card.session).to_dict()
            if lines:
                lines.append("")
            lines += holder_lines(payload["holder"])
        lines.insert(0, f"{label('reader', 'name')}: {card.reader.name}")
        emit(ctx, payload, lines)

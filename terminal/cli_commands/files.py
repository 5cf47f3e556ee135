"""``sscard file read|write``: records by national file address.

``sscard file read '3F00EF06|08|09|$'`` reads the tags of a record file
(authenticating as the card profile says); ``sscard file write
'3F00EF07|...|$' 'value|value|'`` writes them under secure messaging with the
maintenance key.  ``--card-info 'card id code|card no|'`` makes the command
refuse another card (-22, exit 10).  Values as national text (BCD codes as
digits, dates ``YYYYMMDD``, binary hex).
"""

from __future__ import annotations

from typing import Any

import click

from terminal.cli_commands.card import CardOptions, card_options, open_card
from terminal.cli_commands.output import emit, progress
from terminal.cli_commands.render import generic_read_lines, generic_write_lines
from terminal.cli_commands.usage import command_help

__all__ = ["file_group"]

_CARD_INFO = click.option(
    "--card-info",
    metavar="TEXT",
    help="卡识别码|卡号|，不符则拒绝。'card id code|card no|': refuse another card.",
)


@click.group("file", help=command_help("file"))
def file_group() -> None:
    """Generic read / write."""


@file_group.command(
    "read", help="按地址读记录，例如 '3F00EF06|08|09|$'。Read records by national file address."
)
@click.argument("address")
@_CARD_INFO
@card_options
@click.pass_context
def read_file_command(ctx: click.Context, /, address: str, card_info: str | None, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = flows.read_generic(card.session, address, card_info=card_info).to_dict()
    emit(ctx, result, generic_read_lines(result))


@file_group.command("write", help="按地址写记录（维护密钥安全报文）。Write records by national file address.")
@click.argument("address")
@click.argument("data")
@_CARD_INFO
@card_options
@click.pass_context
def write_file_command(
    ctx: click.Context, /, address: str, data: str, card_info: str | None, **kwargs: Any
) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = flows.write_generic(card.session, address, data, card_info=card_info).to_dict()
    emit(ctx, result, generic_write_lines(result))

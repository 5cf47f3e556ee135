"""``sscard activate`` / ``block [--permanent]`` / ``unblock`` / ``status``.

Life-cycle commands are MACed with the application maintenance key (key
source needed); the card decides whether the transition is allowed (exit 8
when it refuses, e.g. activating an active card).  ``status`` reads the life
cycle, the PIN state and, when a key source is at hand, the key try
counters (``--no-keys`` skips them).  ``block`` and ``status`` also run on a
card the registry refuses (blocking such a card is what a terminal should do).
"""

from __future__ import annotations

from typing import Any

import click

from terminal.cli_commands.card import CardOptions, card_options, open_card
from terminal.cli_commands.output import emit, progress, text
from terminal.cli_commands.render import life_cycle_lines, status_lines
from terminal.cli_commands.usage import command_help

__all__ = ["activate_command", "block_command", "status_command", "unblock_command"]


@click.command("activate", help=command_help("activate"))
@card_options
@click.pass_context
def activate_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = flows.activate(card.session).to_dict()
    emit(ctx, result, life_cycle_lines(result))


@click.command("block", help=command_help("block"))
@click.option(
    "--permanent", is_flag=True, help="永久锁定（不能解除）。Block permanently (cannot be released)."
)
@click.option("-y", "--yes", is_flag=True, help="永久锁定时不再确认。Do not ask before a permanent block.")
@card_options
@click.pass_context
def block_command(ctx: click.Context, /, permanent: bool, yes: bool, **kwargs: Any) -> None:
    from terminal import flows

    options = CardOptions.pop(kwargs)
    with open_card(ctx, options, gate=False) as card:
        if permanent and not yes:
            click.confirm(text("words", "block_confirm"), abort=True, err=True)
        with progress(ctx, "flow"):
            result = flows.block(card.session, "permanent" if permanent else "temporary").to_dict()
    emit(ctx, result, life_cycle_lines(result))


@click.command("unblock", help=command_help("unblock"))
@card_options
@click.pass_context
def unblock_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = flows.unblock(card.session).to_dict()
    emit(ctx, result, life_cycle_lines(result))


@click.command("status", help=command_help("status"))
@click.option(
    "--keys/--no-keys",
    "key_counters",
    default=None,
    help="读取密钥计数器（默认：有密钥来源则读）。"
    "Read the key try counters (default: when a key source is at hand).",
)
@card_options
@click.pass_context
def status_command(ctx: click.Context, /, key_counters: bool | None, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs), gate=False) as card:
        if key_counters is None:
            key_counters = card.keys is not None and card.keys.available()
        with progress(ctx, "flow"):
            result = flows.card_status(card.session, key_counters=key_counters).to_dict()
    emit(ctx, result, status_lines(result))

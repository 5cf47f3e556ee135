"""``sscard pin status|verify|change|reset|unblock``: the service password.

PINs come from hidden prompts or, with ``--pin-stdin``, from standard input
one per line (:mod:`terminal.cli_commands.pins`), never from the command
line.  A wrong PIN exits 6 with the retries left in the message (and as
``retries_left`` in the JSON error), a blocked PIN 7; the initial PIN used
for a transaction (``verify --for-transaction``) or chosen as the new one
exits 10 (-35 / -36).
"""

from __future__ import annotations

from typing import Any

import click

from terminal.cli_commands.card import CardOptions, card_options, open_card
from terminal.cli_commands.output import emit, progress
from terminal.cli_commands.pins import PinSource, pin_stdin_option
from terminal.cli_commands.render import pin_operation_lines, pin_status_lines
from terminal.cli_commands.usage import command_help

__all__ = ["pin_group"]


@click.group("pin", help=command_help("pin"))
def pin_group() -> None:
    """The service password commands."""


@pin_group.command("status", help="密码状态（不消耗尝试次数）。PIN state and retries left; spends no try.")
@card_options
@click.pass_context
def status_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card:
        result = flows.pin_status(card.session).to_dict()
    emit(ctx, result, pin_status_lines(result))


@pin_group.command("verify", help="校验服务密码。Verify the service password.")
@click.option(
    "--for-transaction",
    is_flag=True,
    help="交易前校验：拒绝初始密码（-35）。Refuse the initial PIN as for a transaction (-35).",
)
@pin_stdin_option
@card_options
@click.pass_context
def verify_command(ctx: click.Context, /, for_transaction: bool, pin_stdin: bool, **kwargs: Any) -> None:
    from terminal import flows

    options = CardOptions.pop(kwargs)
    pins = PinSource(from_stdin=pin_stdin)
    with open_card(ctx, options) as card:
        pin = pins.ask("pin")
        with progress(ctx, "flow"):
            result = flows.verify_pin(card.session, pin, for_transaction=for_transaction).to_dict()
    emit(ctx, result, pin_operation_lines(result))


@pin_group.command(
    "change", help="修改服务密码（新密码输入两次）。Change the service password (new one twice)."
)
@pin_stdin_option
@card_options
@click.pass_context
def change_command(ctx: click.Context, /, pin_stdin: bool, **kwargs: Any) -> None:
    from terminal import flows

    options = CardOptions.pop(kwargs)
    pins = PinSource(from_stdin=pin_stdin)
    with open_card(ctx, options) as card:
        old = pins.ask("old_pin")
        new = pins.ask_new()
        with progress(ctx, "flow"):
            result = flows.change_pin(card.session, old, new).to_dict()
    emit(ctx, result, pin_operation_lines(result))


@pin_group.command(
    "reset",
    help="重置服务密码：默认为初始密码（社保号码后6位），--chosen 设为新密码。"
    "Reset the service password to the initial one, or with --chosen to a new one.",
)
@click.option("--chosen", is_flag=True, help="设为输入的新密码。Reset to a new PIN (asked twice).")
@pin_stdin_option
@card_options
@click.pass_context
def reset_command(ctx: click.Context, /, chosen: bool, pin_stdin: bool, **kwargs: Any) -> None:
    from terminal import flows

    options = CardOptions.pop(kwargs)
    pins = PinSource(from_stdin=pin_stdin)
    with open_card(ctx, options) as card:
        new_pin = pins.ask_new() if chosen else None
        with progress(ctx, "flow"):
            result = flows.reset_pin(card.session, new_pin=new_pin).to_dict()
    emit(ctx, result, pin_operation_lines(result))


@pin_group.command(
    "unblock", help="解锁服务密码（密码不变）。Unblock the service password (the PIN is unchanged)."
)
@card_options
@click.pass_context
def unblock_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = flows.unblock_pin(card.session).to_dict()
    emit(ctx, result, pin_operation_lines(result))

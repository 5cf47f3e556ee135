"""``sscard authenticate``: prove the card genuine.

Symmetric internal authentication checked by the key source; on generation
3 also the SM2 signature over a fresh challenge and both certificate chains
to the trust anchors (``--trust-anchor`` / ``[cli] trust_anchors``).  A card
that fails is ``card_not_genuine`` (-21, exit 9), never a warning.
"""

from __future__ import annotations

from typing import Any

import click

from terminal.cli_commands.card import CardOptions, card_options, open_card
from terminal.cli_commands.output import emit, progress
from terminal.cli_commands.render import authenticity_lines
from terminal.cli_commands.usage import command_help

__all__ = ["authenticate_command"]


@click.command("authenticate", help=command_help("authenticate"))
@click.option(
    "--trust-anchor",
    "trust_anchors",
    multiple=True,
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="根证书（PEM/DER，可多次）。CA certificate (PEM or DER; repeatable; default [cli] trust_anchors).",
)
@card_options
@click.pass_context
def authenticate_command(ctx: click.Context, /, trust_anchors: tuple[str, ...], **kwargs: Any) -> None:
    from terminal import flows

    with open_card(ctx, CardOptions.pop(kwargs), anchors=trust_anchors) as card, progress(ctx, "flow"):
        result = flows.authenticate_card(card.session).to_dict()
    emit(ctx, result, authenticity_lines(result))

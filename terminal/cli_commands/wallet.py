"""``sscard wallet balance|load|purchase|records``, ``sscard ticket buy|show``,
``sscard bankcard`` (issue 9, docs/wallet.md).

Amounts are typed in yuan (``12.50``; at most two decimals); a bad amount
exits 2, a load past the wallet's limit, a purchase above the balance or a
second park ticket for a year already on the card exit 10 (refused by a
business rule), a card without the wallet exits 5.  Load and purchase need
a key source (the PSAM, or a key file in development); with
``--journal registry`` every money movement is journaled and a tear is
settled at the next presentation (the card commands' common opening,
:func:`terminal.cli_commands.card.open_card`).  The bank card number is
shown masked only.  ``--json`` prints the flows' ``to_dict()``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import click

from terminal._data import load_data
from terminal.cli_commands.card import CardContext, CardOptions, card_options, open_card
from terminal.cli_commands.output import display_width, emit, progress
from terminal.cli_commands.usage import command_help

__all__ = ["bankcard_command", "ticket_group", "wallet_group"]


def _label(section: str, key: str) -> str:
    zh, en = load_data("wallet")["labels"][section][key]
    return f"{zh} {en}"


def _lines(section: str, payload: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """Aligned ``label  value`` lines of ``payload`` (labels: wallet.toml [labels])."""
    labels = [_label(section, key) for key in keys]
    width = max(display_width(item) for item in labels)
    none = str(load_data("wallet")["words"]["none"])
    out = []
    for item, key in zip(labels, keys, strict=True):
        value = payload.get(key)
        if isinstance(value, bool):
            value = load_data("wallet")["words"]["yes" if value else "no"]
        shown = none if value is None or value == "" else str(value)
        out.append(item + " " * (width - display_width(item)) + "  " + shown)
    return out


def _source(card: CardContext) -> Any:
    """The opened key source (load, purchase and ticket sale need one)."""
    return card.keys.open() if card.keys is not None else None


# -- wallet --------------------------------------------------------------------------------------


@click.group("wallet", help=command_help("wallet"))
def wallet_group() -> None:
    """The transport wallet commands."""


BALANCE_KEYS = ("label", "balance", "limit")
TRANSACTION_KEYS = (
    "operation",
    "amount",
    "balance_before",
    "balance",
    "counter",
    "terminal",
    "time",
    "tac",
    "tac_verified",
    "journal_entry",
)


@wallet_group.command("balance", help="交通钱包余额。The wallet's balance and limit (yuan).")
@card_options
@click.pass_context
def balance_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal.flows.wallet import wallet_balance

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = wallet_balance(card.session).to_dict()
    emit(ctx, result, _lines("balance", result, BALANCE_KEYS))


def _money_command(name: str, help_text: str) -> click.Command:
    @wallet_group.command(name, help=help_text)
    @click.argument("amount", metavar="AMOUNT")
    @card_options
    @click.pass_context
    def command(ctx: click.Context, /, amount: str, **kwargs: Any) -> None:
        from terminal.flows import wallet
        from terminal.flows.amounts import parse_amount

        fen = parse_amount(amount)
        flow = wallet.load if name == "load" else wallet.purchase
        with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
            result = flow(card.session, fen, key_source=_source(card)).to_dict()
        emit(ctx, result, _lines("transaction", result, TRANSACTION_KEYS))

    return command


_money_command("load", "充值（圈存）AMOUNT 元。Load AMOUNT yuan into the wallet (e.g. 50 or 12.50).")
_money_command("purchase", "消费 AMOUNT 元。Pay AMOUNT yuan from the wallet.")


@wallet_group.command("records", help="交易记录（最新在前）。The card's transaction records, newest first.")
@card_options
@click.pass_context
def records_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal.flows.wallet import wallet_records

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = wallet_records(card.session).to_dict()
    lines = _lines("balance", result, BALANCE_KEYS)
    for record in result["records"]:
        lines.append(
            f"  {record['number']:>2}  {record['time'] or '-'}  {record['type_text']}  "
            f"{record['amount']:>10}  #{record['counter']}  {record['terminal']}"
        )
    if not result["records"]:
        lines.append("  " + str(load_data("wallet")["words"]["no_records"]))
    emit(ctx, result, lines)


# -- park ticket ---------------------------------------------------------------------------------

TICKET_KEYS = (
    "year",
    "kind_text",
    "valid_from",
    "valid_until",
    "price",
    "terminal",
    "sold_on",
    "replaced_year",
    "journal_entry",
)
GATE_KEYS = ("present", "valid", "checked_on", "year", "kind_text", "valid_from", "valid_until", "sold_on")


@click.group("ticket", help=command_help("ticket"))
def ticket_group() -> None:
    """The park annual ticket commands."""


@ticket_group.command("buy", help="购买公园年票（默认当年）。Sell a park annual ticket (default: this year).")
@click.option("--year", type=int, help="年度（当年或下一年）。The year (this year or the next).")
@click.option("--kind", help="年票类别（默认 1）。Ticket kind (default 1).")
@card_options
@click.pass_context
def buy_command(ctx: click.Context, /, year: int | None, kind: str | None, **kwargs: Any) -> None:
    from terminal.flows.ticket import buy_ticket

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = buy_ticket(card.session, year, kind=kind, key_source=_source(card)).to_dict()
    emit(ctx, result, _lines("ticket", result, TICKET_KEYS))


@ticket_group.command("show", help="公园门口验票。Read the park annual ticket as a park gate does.")
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="按该日期判断是否有效（默认今天）。Check the validity on this date (default: today).",
)
@card_options
@click.pass_context
def show_command(ctx: click.Context, /, on: _dt.datetime | None, **kwargs: Any) -> None:
    from terminal.flows.ticket import read_ticket

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = read_ticket(card.session, on=on.date() if on is not None else None).to_dict()
    emit(ctx, result, _lines("ticket", result, GATE_KEYS))


# -- bank card number ------------------------------------------------------------------------------

BANK_KEYS = ("pan_masked", "bank_name", "label", "aid", "expiry", "source")


@click.command("bankcard", help=command_help("bankcard"))
@card_options
@click.pass_context
def bankcard_command(ctx: click.Context, /, **kwargs: Any) -> None:
    from terminal.flows.bankcard import read_bank_card

    with open_card(ctx, CardOptions.pop(kwargs)) as card, progress(ctx, "flow"):
        result = read_bank_card(card.session).to_dict()
    emit(ctx, result, _lines("bankcard", result, BANK_KEYS))

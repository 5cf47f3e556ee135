"""Wallet, park ticket and bank card endpoints of the native API (issue 9).

=====================================  ==================================================
``POST /api/v1/wallet/balance``        the transport wallet's balance and limit
``POST /api/v1/wallet/load``           load ``amount`` yuan (``"12.50"``)
``POST /api/v1/wallet/purchase``       pay ``amount`` yuan
``POST /api/v1/wallet/records``        the card's transaction records, newest first
``POST /api/v1/ticket/buy``            sell a park annual ticket (``year``, ``kind``)
``POST /api/v1/ticket/show``           the ticket as a park gate reads it (``date``)
``POST /api/v1/bankcard``              the masked bank card number
=====================================  ==================================================

The same bearer token and version header as every native route; each verb
runs through :class:`terminal.service.cards.CardRunner` (reader choice,
queue per card, one session, torn operations settled first when a journal
is configured) and answers the flow's ``to_dict()`` (docs/wallet.md).
Amounts are strings of yuan (a JSON number is refused: no binary floating
point for money).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from terminal.flows import bankcard, ticket, wallet
from terminal.flows.amounts import parse_amount
from terminal.service.api import API_PREFIX, card_target, native_dependencies
from terminal.service.api_models import CardRequest, ErrorModel
from terminal.service.context import ServiceContext
from terminal.session import CardSession

__all__ = ["AmountRequest", "TicketBuyRequest", "TicketShowRequest", "build_wallet_router"]

T = TypeVar("T")


class AmountRequest(CardRequest):
    amount: str = Field(
        min_length=1, max_length=20, description='yuan with at most two decimals, as text (e.g. "12.50")'
    )


class TicketBuyRequest(CardRequest):
    year: int | None = Field(None, ge=2000, le=9999, description="the ticket year; default this year")
    kind: str | None = Field(None, min_length=1, max_length=2, description="ticket kind; default 1")


class TicketShowRequest(CardRequest):
    date: _dt.date | None = Field(None, description="check the validity on this day (default today)")


def build_wallet_router(ctx: ServiceContext) -> APIRouter:
    """The wallet, ticket and bank card routes bound to one service context."""

    router = APIRouter(
        prefix=API_PREFIX,
        dependencies=native_dependencies(ctx),
        responses={400: {"model": ErrorModel}, 409: {"model": ErrorModel}, 503: {"model": ErrorModel}},
        tags=["wallet"],
    )

    async def run(operation: str, body: CardRequest, fn: Callable[[CardSession], T]) -> T:
        return await run_in_threadpool(partial(ctx.runner.run, operation, card_target(ctx, body), fn))

    @router.post("/wallet/balance", summary="Transport wallet balance (交通钱包余额)")
    async def wallet_balance(body: CardRequest) -> dict[str, Any]:
        return (await run("wallet.balance", body, wallet.wallet_balance)).to_dict()

    @router.post("/wallet/load", summary="Load the wallet (充值)")
    async def wallet_load(body: AmountRequest) -> dict[str, Any]:
        fen = parse_amount(body.amount)
        return (await run("wallet.load", body, lambda s: wallet.load(s, fen))).to_dict()

    @router.post("/wallet/purchase", summary="Pay from the wallet (消费)")
    async def wallet_purchase(body: AmountRequest) -> dict[str, Any]:
        fen = parse_amount(body.amount)
        return (await run("wallet.purchase", body, lambda s: wallet.purchase(s, fen))).to_dict()

    @router.post("/wallet/records", summary="Wallet transaction records, newest first")
    async def wallet_records(body: CardRequest) -> dict[str, Any]:
        return (await run("wallet.records", body, wallet.wallet_records)).to_dict()

    @router.post("/ticket/buy", summary="Sell a park annual ticket (公园年票)")
    async def ticket_buy(body: TicketBuyRequest) -> dict[str, Any]:
        result = await run("ticket.buy", body, lambda s: ticket.buy_ticket(s, body.year, kind=body.kind))
        return result.to_dict()

    @router.post("/ticket/show", summary="The park annual ticket as a park gate reads it")
    async def ticket_show(body: TicketShowRequest) -> dict[str, Any]:
        return (await run("ticket.show", body, lambda s: ticket.read_ticket(s, on=body.date))).to_dict()

    @router.post("/bankcard", summary="The bank card number of the financial application (masked)")
    async def bank_card(body: CardRequest) -> dict[str, Any]:
        return (await run("bankcard.read", body, bankcard.read_bank_card)).to_dict()

    return router

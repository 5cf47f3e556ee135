"""Issuance endpoints of the native API (``/api/v1/issuance/...``).

=====================================  ==================================================
``POST /api/v1/issuance/inspect``      personalisation state of the card (reads only)
``POST /api/v1/issuance/issue``        issue (or resume) an order on the blank card
``POST /api/v1/issuance/replace``      a replacement for ``old_card_id``
``POST /api/v1/issuance/scrap``        take an unfinished blank card out of use
=====================================  ==================================================

The same bearer token and version header as every native route.  A blank
card cannot be opened like an issued one, so these verbs choose the reader,
wait for the card and queue behind other operations on it like
:class:`terminal.service.cards.CardRunner`, then give the not yet connected
session to :mod:`terminal.flows.issuance`.  The registry is the service's
default one (``$SSCARD_DB_URL`` or the data directory, as the journal), the
actor the configured operator at the terminal ``zdbm``; the CA the local
test CA (docs/issuance.md).  Holder data travel in the request body only
and never reach a log or an error text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from apdu.errors import SscardError
from terminal.flows.issuance import inspect_card, issue_card, replace_card, scrap_card
from terminal.issuance import IssuanceOrder, LocalTestCa
from terminal.registry import Actor, Registry, open_registry
from terminal.service.api import API_PREFIX, card_target, native_dependencies
from terminal.service.api_models import CardRequest, ErrorModel
from terminal.service.context import ServiceContext
from terminal.session import CardSession

__all__ = ["build_issuance_router"]

T = TypeVar("T")


class HolderBody(BaseModel):
    """The holder (interfaces.md field names; EF07 contact fields optional)."""

    model_config = ConfigDict(extra="forbid")

    # Bounds here only cap the request size: the order's own validation gives the
    # documented errors (-23 / -41 / -42, docs/issuance.md), as the CLI and the API do.
    ssn: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=300)
    gender: str = Field(min_length=1, max_length=1)
    ethnicity: str = Field(min_length=1, max_length=2)
    birthplace: str = Field(min_length=6, max_length=6)
    birth_date: str = Field(min_length=8, max_length=10)
    address: str | None = Field(None, max_length=80)
    phone: str | None = Field(None, max_length=20)
    occupation: str | None = Field(None, max_length=30)
    postcode: str | None = Field(None, max_length=6)


class CardFactsBody(BaseModel):
    """The card facts the issuer chooses; the region is checked against the blank card."""

    model_config = ConfigDict(extra="forbid")

    card_number: str = Field(min_length=9, max_length=9)
    issue_date: str = Field(min_length=8, max_length=10)
    expiry_date: str = Field(min_length=8, max_length=10)
    bank: str = Field(min_length=1, max_length=60)
    region_code: str | None = Field(None, min_length=6, max_length=6)


class IssueRequest(CardRequest):
    holder: HolderBody
    card: CardFactsBody
    activate: bool = Field(False, description="activate on the card and in the registry right after")


class ReplaceRequest(IssueRequest):
    old_card_id: str = Field(min_length=32, max_length=32, description="the old card's identification code")
    reason: Literal["lost", "damaged"] | None = Field(
        None, description="lost (formal loss report) or damaged (card in hand); default from its status"
    )


class ProgressModel(BaseModel):
    card_id: str
    profile: str
    generation: int
    life_cycle: str
    life_cycle_text: str
    card_number: str | None
    loaded_roles: list[str]
    pin_loaded: bool
    records_complete: bool
    sign_key: bool
    encrypt_key: bool
    sign_certificate: bool
    encrypt_certificate: bool


class ResolvedModel(BaseModel):
    entry_id: int
    operation: str
    outcome: str
    result: str | None
    note: str
    resolved: bool


class IssuanceModel(BaseModel):
    operation: Literal["issue", "replace"]
    card_id: str
    card_number: str
    generation: int
    life_cycle: str
    life_cycle_text: str
    registry_status: str
    replaces: str | None
    resumed: bool
    steps_run: int
    steps_skipped: int
    resolved: list[ResolvedModel]
    certificate_serial: str | None
    seconds: float


class ScrapModel(BaseModel):
    card_id: str
    life_cycle_before: str
    life_cycle: str
    life_cycle_text: str
    resolved: list[ResolvedModel]


class _Registry:
    """The service's registry, opened at the first issuance verb."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registry: Registry | None = None

    def get(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry, _ = open_registry()
            return self._registry


def _order(body: IssueRequest) -> IssuanceOrder:
    holder = body.holder.model_dump(exclude_none=True)
    card = body.card.model_dump(exclude_none=True)
    return IssuanceOrder.from_mapping(holder, card)


def build_issuance_router(ctx: ServiceContext) -> APIRouter:
    """The issuance routes bound to one service context."""

    router = APIRouter(
        prefix=f"{API_PREFIX}/issuance",
        dependencies=native_dependencies(ctx),
        responses={409: {"model": ErrorModel}, 503: {"model": ErrorModel}},
        tags=["issuance"],
    )
    config = ctx.config
    registry = _Registry()
    actor = Actor(operator=config.operator, terminal=config.zdbm or "sscard-service")

    def on_card(operation: str, body: CardRequest, fn: Callable[[CardSession], T]) -> T:
        """Choose the reader, queue, run ``fn`` on a not yet connected session, close."""
        runner = ctx.runner
        target = card_target(ctx, body)
        ctx.hub.publish("flow_started", operation=operation, reader=body.reader)
        try:
            reader = runner.choose_reader(target, operation=operation)
            ticket = ctx.queue.acquire(reader.name, config.queue_wait_seconds)
        except SscardError as exc:
            runner.finished(operation, body.reader, ok=False, error=exc)
            raise
        session = CardSession(
            ctx.backend.open_transport(reader.name),
            key_source=ctx.keys.get(),
            journal=ctx.journal,
            trust_anchors=runner.anchors,
            terminal_number=config.terminal_number or None,
            device_number=config.device_number,
        )
        try:
            result = fn(session)
        except SscardError as exc:
            runner.finished(operation, reader.name, ok=False, error=exc)
            raise
        finally:
            if session.transport.connected:
                session.close()
            ticket.release()
        runner.finished(operation, reader.name, ok=True)
        return result

    async def run(operation: str, body: CardRequest, fn: Callable[[CardSession], T]) -> T:
        return await run_in_threadpool(partial(on_card, operation, body, fn))

    @router.post("/inspect", response_model=ProgressModel, summary="Personalisation state of the card")
    async def inspect(body: CardRequest) -> dict[str, Any]:
        result = await run("card.issue.inspect", body, inspect_card)
        return result.to_dict()

    @router.post("/issue", response_model=IssuanceModel, summary="Issue (or resume) a card (即时制卡)")
    async def issue(body: IssueRequest) -> dict[str, Any]:
        order = _order(body)
        result = await run(
            "card.issue",
            body,
            lambda s: issue_card(
                s, order, registry=registry.get(), actor=actor, ca=LocalTestCa(), activate=body.activate
            ),
        )
        return result.to_dict()

    @router.post("/replace", response_model=IssuanceModel, summary="Replacement card (补换卡)")
    async def replace(body: ReplaceRequest) -> dict[str, Any]:
        order = _order(body)
        result = await run(
            "card.replace",
            body,
            lambda s: replace_card(
                s,
                order,
                body.old_card_id,
                registry=registry.get(),
                actor=actor,
                reason=body.reason,
                ca=LocalTestCa(),
                activate=body.activate,
            ),
        )
        return result.to_dict()

    @router.post("/scrap", response_model=ScrapModel, summary="Scrap an unfinished blank card")
    async def scrap(body: CardRequest) -> dict[str, Any]:
        result = await run("card.scrap", body, scrap_card)
        return result.to_dict()

    return router

"""The service's own pages: the PIN page (``/pin/``) and the kiosk (``/kiosk/``).

Both are static files shipped in the package and talk only to their own
``/pin/api/*`` and ``/kiosk/api/*`` endpoints.  Those endpoints take POSTs
from the service's own origin only (browsers always send ``Origin`` on a
POST), so neither a counter page on the allow-list nor any other page can
drive them; they need no token.  The kiosk API answers masked holder data
only and runs every verb on the kiosk reader through the same queue, PIN
rate limit and terminal flows as the native API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from apdu.errors import SscardError
from terminal import flows
from terminal.service._data import load_data, read_asset
from terminal.service.cards import CardTarget
from terminal.service.context import ServiceContext
from terminal.service.errors import NotFound, OriginRefused
from terminal.service.events import card_kind
from terminal.service.pinpage import MAX_BODY, wipe
from terminal.session import CardSession

__all__ = ["build_page_router", "mask_name", "mask_ssn"]

T = TypeVar("T")

ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PIN_ASSETS = ("index.html", "pin.js", "pin.css")
KIOSK_ASSETS = ("index.html", "kiosk.js", "kiosk.css")
LONG_POLL_STEP = 0.1


def mask_name(name: str) -> str:
    """The first character and one ``*`` per further character (张三 -> 张*)."""
    text = name.strip()
    return text[:1] + "*" * max(len(text) - 1, 0)


def mask_ssn(ssn: str) -> str:
    """First 6 and last 4 characters (110102********1008)."""
    if len(ssn) <= 10:
        return "*" * len(ssn)
    return ssn[:6] + "*" * (len(ssn) - 10) + ssn[-4:]


class _KioskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_ref: str = Field(..., min_length=1, max_length=100)


class KioskPin(_KioskBody):
    pin: str = Field(..., min_length=1, max_length=32)


class KioskChange(_KioskBody):
    old_pin: str = Field(..., min_length=1, max_length=32)
    new_pin: str = Field(..., min_length=1, max_length=32)


class PendingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: float = Field(0, ge=0, le=25)


def _asset(folder: str, name: str) -> Response:
    suffix = name[name.rfind(".") :]
    return Response(read_asset(folder, name), media_type=ASSET_TYPES[suffix], headers={"Cache-Control": "no-cache"})


def build_page_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    own = frozenset(ctx.config.own_origins)
    config = ctx.config

    async def same_origin(request: Request) -> None:
        origin = (request.headers.get("origin") or "").lower().rstrip("/")
        if origin not in own:
            raise OriginRefused("the service's own pages only")

    guarded = [Depends(same_origin)]

    # -- PIN page -----------------------------------------------------------------------------

    @router.get("/pin/")
    async def pin_page() -> Response:
        return _asset("pinpage", "index.html")

    @router.get("/pin/{name}")
    async def pin_asset(name: str) -> Response:
        if name not in PIN_ASSETS:
            raise NotFound("no such file")
        return _asset("pinpage", name)

    @router.post("/pin/api/pending", dependencies=guarded)
    async def pin_pending(query: PendingQuery) -> dict[str, Any]:
        deadline = time.monotonic() + query.wait
        while True:
            entries = ctx.broker.pending()
            if entries or time.monotonic() >= deadline:
                return {"entries": entries}
            await asyncio.sleep(LONG_POLL_STEP)

    @router.post("/pin/api/entries/{entry_id}", dependencies=guarded)
    async def pin_submit(entry_id: str, request: Request) -> dict[str, Any]:
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY:
                wipe(body)
                raise NotFound("no such pending PIN entry")
        ctx.broker.submit(entry_id, body)
        return {"ok": True}

    @router.post("/pin/api/entries/{entry_id}/cancel", dependencies=guarded)
    async def pin_cancel(entry_id: str) -> dict[str, Any]:
        ctx.broker.cancel(entry_id)
        return {"ok": True}

    # -- kiosk ------------------------------------------------------------------------------------

    if not config.kiosk_enabled:
        return router

    @router.get("/kiosk/")
    async def kiosk_page() -> Response:
        return _asset("kiosk", "index.html")

    @router.get("/kiosk/settings.json")
    async def kiosk_settings() -> dict[str, Any]:
        texts = load_data("kiosk")
        return {
            "idle_timeout_ms": int(config.kiosk_idle_timeout_seconds * 1000),
            "poll_ms": config.kiosk_poll_ms,
            "message_ms": int(config.kiosk_message_seconds * 1000),
            "texts": {"zh": texts["zh"], "en": texts["en"]},
            "errors": texts["errors"],
        }

    @router.get("/kiosk/{name}")
    async def kiosk_asset(name: str) -> Response:
        if name not in KIOSK_ASSETS:
            raise NotFound("no such file")
        return _asset("kiosk", name)

    def kiosk_target() -> CardTarget:
        return CardTarget(reader=config.kiosk_reader or None, itype=3, wait=0.0)

    async def kiosk_run(operation: str, fn: Callable[[CardSession], T]) -> T:
        return await run_in_threadpool(partial(ctx.runner.run, operation, kiosk_target(), fn))

    def bound(card_ref: str, fn: Callable[[CardSession], T]) -> Callable[[CardSession], T]:
        def call(session: CardSession) -> T:
            flows.check_card_info(session, card_ref)
            return fn(session)

        return call

    @router.post("/kiosk/api/card", dependencies=guarded)
    async def kiosk_card() -> dict[str, Any]:
        def look() -> dict[str, Any]:
            pattern = (config.kiosk_reader or "").casefold()
            try:
                readers = [r for r in ctx.backend.readers() if r.kind != "psam" and pattern in r.name.casefold()]
            except SscardError as exc:
                return {"present": False, "card_kind": None, "reader": None, "error": exc.error_id}
            with_card = [r for r in readers if r.card_present]
            if not with_card:
                return {"present": False, "card_kind": None, "reader": readers[0].name if readers else None}
            reader = with_card[0]
            return {"present": True, "card_kind": card_kind(reader.name, reader.atr), "reader": reader.name}

        return await run_in_threadpool(look)

    @router.post("/kiosk/api/read", dependencies=guarded)
    async def kiosk_read() -> dict[str, Any]:
        def read(session: CardSession) -> dict[str, Any]:
            basic = flows.read_basic(session)
            holder = flows.read_holder(session)
            pin = flows.pin_status(session)
            return {
                "card_ref": f"{basic.card_id}|{basic.card_number}|",
                "card_number": basic.card_number,
                "generation": basic.generation,
                "name_masked": mask_name(holder.name),
                "ssn_masked": mask_ssn(holder.ssn),
                "pin": pin.to_dict(),
                "blocked": session.info.application_blocked,
            }

        return await kiosk_run("kiosk.read", read)

    @router.post("/kiosk/api/verify", dependencies=guarded)
    async def kiosk_verify(body: KioskPin) -> dict[str, Any]:
        pin = bytearray(body.pin.encode())
        body.pin = ""
        try:
            result = await kiosk_run("pin.verify", bound(body.card_ref, lambda s: ctx.desk.verify(s, pin=pin)))
        finally:
            wipe(pin)
        return result.to_dict()

    @router.post("/kiosk/api/change", dependencies=guarded)
    async def kiosk_change(body: KioskChange) -> dict[str, Any]:
        old, new = bytearray(body.old_pin.encode()), bytearray(body.new_pin.encode())
        body.old_pin = body.new_pin = ""
        try:
            result = await kiosk_run(
                "pin.change", bound(body.card_ref, lambda s: ctx.desk.change(s, old=old, new=new))
            )
        finally:
            wipe(old, new)
        return result.to_dict()

    @router.post("/kiosk/api/block", dependencies=guarded)
    async def kiosk_block(body: KioskPin) -> dict[str, Any]:
        pin = bytearray(body.pin.encode())
        body.pin = ""

        def report_loss(session: CardSession) -> dict[str, Any]:
            ctx.desk.verify(session, pin=pin)
            return flows.block(session, "temporary").to_dict()

        try:
            return await kiosk_run("kiosk.block", bound(body.card_ref, report_loss))
        finally:
            wipe(pin)

    @router.post("/kiosk/api/status", dependencies=guarded)
    async def kiosk_status(body: _KioskBody) -> dict[str, Any]:
        result = await kiosk_run(
            "card.status", bound(body.card_ref, lambda s: flows.card_status(s, key_counters=False))
        )
        data = result.to_dict()
        data.pop("keys", None)
        return data

    return router


"""The service's own pages: the PIN page (``/pin/``) and the kiosk (``/kiosk/``).

Both are static files shipped in the package (``terminal/service/pinpage/``,
``terminal/service/kiosk/``) and talk only to their own ``/pin/api/*`` and
``/kiosk/api/*`` endpoints.  Those endpoints take POSTs from the service's
own origin only (browsers always send ``Origin`` on a POST), so neither a
counter page on the allow-list nor any other page can drive them; they need
no token.  The security middleware adds a CSP (scripts and styles from the
service only) and forbids framing, so another page cannot wrap them either.

The PIN page's endpoints:

- ``POST /pin/api/pending`` ``{"wait": s, "known": [ids]}``: long poll; answers
  ``{"entries": [...]}`` at once when the pending ids differ from ``known``,
  else when they change or ``wait`` runs out;
- ``POST /pin/api/entries/{id}`` with a ``text/plain`` body (one PIN per line):
  hands the PIN(s) to the waiting operation and answers its outcome
  (``{"accepted": true, "outcome": {"ok", "error", "national_code"}}``;
  ``ok`` null when the operation did not finish in time);
- ``POST /pin/api/entries/{id}/cancel``: the waiting operation fails with -31;
- ``GET /pin/settings.json``: texts, steps and the PIN length limits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from card_model.profile import PROFILE_NAMES, load_profile
from terminal.service._data import load_data, read_asset
from terminal.service.context import ServiceContext
from terminal.service.errors import NotFound, OriginRefused, RequestInvalid
from terminal.service.events import Subscription
from terminal.service.kiosk_api import build_kiosk_router
from terminal.service.pinpage import MAX_BODY, wipe

__all__ = ["build_page_router", "own_origin_guard", "pin_limits"]

ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# URL name -> (package folder, file).  Both pages share the keypad script and
# the common stylesheet and script (``terminal/service/pagecommon/``: colours,
# bar, buttons, keypad, icons; texts, keyboard, settings), each served beside
# the page so that it loads them from its own folder.
SHARED_ASSETS: dict[str, tuple[str, str]] = {
    "keypad.js": ("pinpage", "keypad.js"),
    "common.css": ("pagecommon", "common.css"),
    "common.js": ("pagecommon", "common.js"),
}
PIN_ASSETS: dict[str, tuple[str, str]] = {
    "index.html": ("pinpage", "index.html"),
    "pin.js": ("pinpage", "pin.js"),
    "pin.css": ("pinpage", "pin.css"),
    **SHARED_ASSETS,
}
KIOSK_ASSETS: dict[str, tuple[str, str]] = {
    "index.html": ("kiosk", "index.html"),
    "kiosk.js": ("kiosk", "kiosk.js"),
    "kiosk.css": ("kiosk", "kiosk.css"),
    **SHARED_ASSETS,
}
LONG_POLL_STEP = 0.1


class PendingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: float = Field(0, ge=0, le=25)
    known: list[str] = Field(default_factory=list, max_length=16)


def asset_response(table: dict[str, tuple[str, str]], name: str) -> Response:
    """A shipped static file by its URL name (NotFound for anything else)."""
    entry = table.get(name)
    if entry is None:
        raise NotFound("no such file")
    folder, file = entry
    suffix = file[file.rfind(".") :]
    return Response(
        read_asset(folder, file), media_type=ASSET_TYPES[suffix], headers={"Cache-Control": "no-cache"}
    )


def pin_limits() -> tuple[int, int]:
    """The fewest and most PIN digits any card profile allows."""
    rules = [load_profile(name).pin for name in PROFILE_NAMES]
    return min(r.min_digits for r in rules), max(r.max_digits for r in rules)


def own_origin_guard(ctx: ServiceContext) -> Any:
    """A route dependency refusing requests whose Origin is not the service's own."""
    own = frozenset(ctx.config.own_origins)

    async def same_origin(request: Request) -> None:
        origin = (request.headers.get("origin") or "").strip().lower().rstrip("/")
        if origin not in own:
            raise OriginRefused("the service's own pages only")

    return Depends(same_origin)


async def read_pin_body(request: Request) -> bytearray:
    """The ``text/plain`` body as a buffer the caller wipes (at most MAX_BODY bytes)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            wipe(body)
            raise RequestInvalid("the PIN entry body is too long")
    return body


async def flow_outcome(subscription: Subscription, reader: str, timeout: float) -> dict[str, Any]:
    """The next ``flow_finished`` event of ``reader`` (ok null when none came in time)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"ok": None, "error": None, "national_code": None}
        try:
            event = await asyncio.wait_for(subscription.next(), left)
        except TimeoutError:
            continue
        if event.get("event") == "flow_finished" and event.get("reader") == reader:
            return {
                "ok": bool(event.get("ok")),
                "error": event.get("error"),
                "national_code": event.get("national_code"),
            }


def build_page_router(ctx: ServiceContext) -> APIRouter:
    """The routes of the PIN page and (when enabled) the kiosk."""
    router = APIRouter(include_in_schema=False)
    guard = own_origin_guard(ctx)
    settings = load_data("pinpage")

    @router.get("/pin/")
    async def pin_page() -> Response:
        return asset_response(PIN_ASSETS, "index.html")

    @router.get("/pin/settings.json")
    async def pin_settings() -> dict[str, Any]:
        low, high = pin_limits()
        return {
            "min_digits": low,
            "max_digits": high,
            "pending_wait_seconds": float(settings["page"]["pending_wait_seconds"]),
            "result_ms": int(float(settings["page"]["result_seconds"]) * 1000),
            "texts": {"zh": settings["zh"], "en": settings["en"]},
            "errors": settings["errors"],
        }

    @router.get("/pin/{name}")
    async def pin_asset(name: str) -> Response:
        return asset_response(PIN_ASSETS, name)

    @router.post("/pin/api/pending", dependencies=[guard])
    async def pin_pending(query: PendingQuery, request: Request) -> dict[str, Any]:
        deadline = time.monotonic() + query.wait
        known = set(query.known)
        while True:
            entries = ctx.broker.pending()
            if {e["id"] for e in entries} != known or time.monotonic() >= deadline:
                return {"entries": entries}
            if await request.is_disconnected():
                return {"entries": []}
            await asyncio.sleep(LONG_POLL_STEP)

    @router.post("/pin/api/entries/{entry_id}", dependencies=[guard])
    async def pin_submit(entry_id: str, request: Request) -> dict[str, Any]:
        body = await read_pin_body(request)
        try:
            reader = ctx.broker.reader_of(entry_id)
        except NotFound:
            wipe(body)
            raise
        subscription = ctx.hub.subscribe()
        try:
            ctx.broker.submit(entry_id, body)
            outcome = await flow_outcome(
                subscription, reader, float(settings["page"]["outcome_wait_seconds"])
            )
        finally:
            ctx.hub.unsubscribe(subscription)
        return {"accepted": True, "outcome": outcome}

    @router.post("/pin/api/entries/{entry_id}/cancel", dependencies=[guard])
    async def pin_cancel(entry_id: str) -> dict[str, Any]:
        ctx.broker.cancel(entry_id)
        return {"cancelled": True}

    if ctx.config.kiosk_enabled:

        @router.get("/kiosk/")
        async def kiosk_page() -> Response:
            return asset_response(KIOSK_ASSETS, "index.html")

        router.include_router(build_kiosk_router(ctx, guard))

        @router.get("/kiosk/{name}")
        async def kiosk_asset(name: str) -> Response:
            return asset_response(KIOSK_ASSETS, name)

    return router

"""The kiosk page's own API (``/kiosk/api/*``) and its settings.

Every route is a POST from the service's own origin (the guard of
:mod:`terminal.service.pages`) and runs on the kiosk reader
(``readers.kiosk``, else ``readers.card``) through the same card queue, PIN
rate limit and terminal flows as the native API:

- ``card`` ``{"until": "present"|"absent", "wait": s}``: is a card in the
  kiosk reader (long poll until it is / is not, at most ``wait`` seconds);
- ``read``: card number, generation, PIN state, life cycle and the holder's
  name and social security number *masked* (the full values never leave the
  service); ``card_ref`` (``card id code|card no|``) binds the later verbs
  to this card (a swapped card answers -22);
- ``verify`` / ``change`` / ``block`` (temporary loss report, after the PIN)
  take the PIN(s) in the JSON body; ``status`` needs no PIN.

The service keeps no kiosk session: the page holds the card reference and
the masked data and forgets them on its inactivity timeout.  Errors answer
the JSON error body of the native API plus ``retries_left`` after a wrong PIN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from apdu.errors import SscardError, VerificationFailed
from card_model.lifecycle import LifeCycle
from terminal import flows
from terminal.readers import ReaderInfo
from terminal.service._data import load_data
from terminal.service.cards import CardTarget
from terminal.service.context import ServiceContext
from terminal.service.events import card_kind
from terminal.service.pinpage import wipe
from terminal.service.responses import error_body, http_status
from terminal.session import CardSession

__all__ = ["build_kiosk_router", "mask_name"]

T = TypeVar("T")
HOLDER_READABLE = (LifeCycle.PERSONALISED, LifeCycle.ACTIVE)
KIOSK_ITYPE = 3  # contact first, as the national interface's "automatic"


def mask_name(name: str) -> str:
    """The first character and one ``*`` per further character (张三 -> 张*)."""
    text = name.strip()
    return text[:1] + "*" * max(len(text) - 1, 0)


class CardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: Literal["present", "absent"] | None = None
    wait: float = Field(0, ge=0, le=25)


class CardRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_ref: str = Field(..., min_length=3, max_length=100)


class KioskPin(CardRef):
    pin: str = Field(..., min_length=1, max_length=32)


class KioskChange(CardRef):
    old_pin: str = Field(..., min_length=1, max_length=32)
    new_pin: str = Field(..., min_length=1, max_length=32)


def kiosk_error(exc: SscardError) -> JSONResponse:
    """The error body the page shows (with ``retries_left`` after a wrong PIN)."""
    body = error_body(exc)
    if isinstance(exc, VerificationFailed) and exc.retries_left is not None:
        body["retries_left"] = exc.retries_left
    return JSONResponse(body, status_code=http_status(exc))


def _kiosk_readers(ctx: ServiceContext) -> list[ReaderInfo]:
    pattern = ctx.config.kiosk_reader.casefold()
    readers = ctx.backend.readers()
    if pattern:
        return [r for r in readers if pattern in r.name.casefold()]
    return [r for r in readers if r.kind != "psam"]


def look_for_card(ctx: ServiceContext) -> dict[str, Any]:
    """Whether a card is in the kiosk reader, and what kind (no card command)."""
    try:
        readers = _kiosk_readers(ctx)
    except SscardError as exc:
        return {"present": False, "card_kind": None, "reader": None, "error": exc.error_id}
    with_card = [r for r in readers if r.card_present]
    if not with_card:
        return {"present": False, "card_kind": None, "reader": readers[0].name if readers else None}
    reader = with_card[0]
    return {"present": True, "card_kind": card_kind(reader.name, reader.atr), "reader": reader.name}


def read_card(session: CardSession) -> dict[str, Any]:
    """What the kiosk shows about the inserted card (holder data masked)."""
    basic = flows.read_basic(session)
    status = flows.card_status(session, key_counters=False)
    readable = status.life_cycle in HOLDER_READABLE and not session.info.application_blocked
    holder = flows.read_holder(session) if readable else None
    rules = session.profile.pin
    return {
        "card_ref": f"{session.card_id}|{basic.card_number}|",
        "card_number": basic.card_number,
        "generation": basic.generation,
        "spec_version": basic.spec_version,
        "name_masked": mask_name(holder.name) if holder is not None else None,
        "ssn_masked": holder.masked_ssn if holder is not None else None,
        "pin": status.pin.to_dict(),
        "pin_digits": {"min": rules.min_digits, "max": rules.max_digits},
        "life_cycle": status.life_cycle.label,
    }


def build_kiosk_router(ctx: ServiceContext, guard: Any) -> APIRouter:
    """``/kiosk/settings.json`` and ``/kiosk/api/*`` (``guard``: the own-origin dependency)."""
    router = APIRouter(prefix="/kiosk")
    config = ctx.config
    data = load_data("kiosk")
    wait_max = float(data["api"]["card_wait_max_seconds"])
    check_every = float(data["api"]["card_check_seconds"])

    def target() -> CardTarget:
        return CardTarget(reader=config.kiosk_reader or None, itype=KIOSK_ITYPE, wait=0.0)

    async def run(operation: str, card_ref: str | None, fn: Callable[[CardSession], T]) -> T:
        def call(session: CardSession) -> T:
            if card_ref is not None:
                flows.check_card_info(session, card_ref)
            return fn(session)

        return await run_in_threadpool(partial(ctx.runner.run, operation, target(), call))

    @router.get("/settings.json")
    async def settings() -> dict[str, Any]:
        return {
            "idle_timeout_ms": int(config.kiosk_idle_timeout_seconds * 1000),
            "poll_ms": config.kiosk_poll_ms,
            "message_ms": int(config.kiosk_message_seconds * 1000),
            "card_wait_seconds": wait_max,
            "texts": {"zh": data["zh"], "en": data["en"]},
            "life_cycle": data["life_cycle"],
            "errors": data["errors"],
        }

    @router.post("/api/card", dependencies=[guard])
    async def card(query: CardQuery, request: Request) -> dict[str, Any]:
        deadline = time.monotonic() + min(query.wait, wait_max)
        while True:
            state = await run_in_threadpool(look_for_card, ctx)
            left = deadline - time.monotonic()
            if query.until is None or state["present"] == (query.until == "present") or left <= 0:
                return state
            if await request.is_disconnected():
                return state
            await run_in_threadpool(ctx.hub.wait_for_change, min(check_every, left))

    @router.post("/api/read", dependencies=[guard], response_model=None)
    async def read() -> dict[str, Any] | JSONResponse:
        try:
            return await run("kiosk.read", None, read_card)
        except SscardError as exc:
            return kiosk_error(exc)

    @router.post("/api/verify", dependencies=[guard], response_model=None)
    async def verify(body: KioskPin) -> dict[str, Any] | JSONResponse:
        pin = bytearray(body.pin.encode())
        body.pin = ""
        try:
            result = await run("pin.verify", body.card_ref, lambda s: ctx.desk.verify(s, pin=pin))
        except SscardError as exc:
            return kiosk_error(exc)
        finally:
            wipe(pin)
        return result.to_dict()

    @router.post("/api/change", dependencies=[guard], response_model=None)
    async def change(body: KioskChange) -> dict[str, Any] | JSONResponse:
        old, new = bytearray(body.old_pin.encode()), bytearray(body.new_pin.encode())
        body.old_pin = body.new_pin = ""
        try:
            result = await run("pin.change", body.card_ref, lambda s: ctx.desk.change(s, old=old, new=new))
        except SscardError as exc:
            return kiosk_error(exc)
        finally:
            wipe(old, new)
        return result.to_dict()

    @router.post("/api/block", dependencies=[guard], response_model=None)
    async def block(body: KioskPin) -> dict[str, Any] | JSONResponse:
        pin = bytearray(body.pin.encode())
        body.pin = ""

        def report_loss(session: CardSession) -> dict[str, Any]:
            ctx.desk.verify(session, pin=pin)
            return flows.block(session, "temporary").to_dict()

        try:
            return await run("kiosk.block", body.card_ref, report_loss)
        except SscardError as exc:
            return kiosk_error(exc)
        finally:
            wipe(pin)

    @router.post("/api/status", dependencies=[guard], response_model=None)
    async def status(body: CardRef) -> dict[str, Any] | JSONResponse:
        try:
            result = await run(
                "card.status", body.card_ref, lambda s: flows.card_status(s, key_counters=False)
            )
        except SscardError as exc:
            return kiosk_error(exc)
        out = result.to_dict()
        out.pop("keys", None)
        return out

    return router

"""``/api/v1/events``: the WebSocket event stream of the native API.

The handshake needs the installation token, as ``Authorization: Bearer``
(programs) or as the subprotocol ``bearer.<token>`` next to ``sscard.v1``
(browsers: ``new WebSocket(url, ["sscard.v1", "bearer." + token])``; the
service answers with ``sscard.v1``).  The first message is ``hello`` with
the API version and the readers; then every event of
:class:`terminal.service.events.EventHub` as one JSON text message.  The
stream is one-way: messages from the client are read and ignored.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from terminal.service.api import api_version
from terminal.service.context import ServiceContext
from terminal.service.events import make_event

__all__ = ["SUBPROTOCOL", "build_event_router", "presented_token"]

log = logging.getLogger("sscard.service.events")

SUBPROTOCOL = "sscard.v1"
TOKEN_PREFIX = "bearer."  # noqa: S105 - a subprotocol prefix, not a secret


def presented_token(websocket: WebSocket) -> tuple[str | None, bool]:
    """``(token, via_subprotocol)`` from the handshake headers."""
    value = websocket.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    for proto in websocket.scope.get("subprotocols", []):
        if proto.startswith(TOKEN_PREFIX):
            return proto[len(TOKEN_PREFIX) :], True
    return None, False


def build_event_router(ctx: ServiceContext, *, prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix)

    @router.websocket("/events")
    async def events(websocket: WebSocket) -> None:
        token, via_subprotocol = presented_token(websocket)
        if not ctx.token.matches(token):
            log.warning("event stream refused: no valid token")
            await websocket.close(code=1008, reason="unauthorized")
            return
        offered = websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol=SUBPROTOCOL if via_subprotocol or SUBPROTOCOL in offered else None)
        subscription = ctx.hub.subscribe()

        async def drain() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

        reader = asyncio.create_task(drain())
        try:
            await websocket.send_json(
                make_event(
                    "hello",
                    api_version=api_version(),
                    readers=ctx.hub.snapshot(),
                    pcsc_available=ctx.hub.pcsc_available,
                )
            )
            while not reader.done():
                getter = asyncio.create_task(subscription.next())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await websocket.send_json(getter.result())
                else:
                    getter.cancel()
        except (WebSocketDisconnect, OSError, RuntimeError):
            log.debug("event stream: the subscriber left")
        finally:
            ctx.hub.unsubscribe(subscription)
            reader.cancel()

    return router

"""The service's ASGI application: one object serving both ports.

:func:`create_app` wires a :class:`~terminal.service.context.ServiceContext`
and returns a :class:`ServiceApp`: the security checks
(:class:`~terminal.service.security.SecurityMiddleware`) in front of a
dispatcher that sends requests arriving on ``national_port`` to the national
drop-in and everything else to the native app (``/api/v1/`` with its OpenAPI
document at ``/api/v1/openapi.json``, the event stream, the PIN page, the
kiosk).  The lifespan starts the reader watcher and stops it at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apdu.errors import SscardError
from terminal.journal_hook import JournalHook
from terminal.service.api import API_PREFIX, api_version, build_router, service_version
from terminal.service.api_issuance import build_issuance_router
from terminal.service.api_wallet import build_wallet_router
from terminal.service.backend import CardBackend
from terminal.service.config import ServiceConfig
from terminal.service.context import ServiceContext
from terminal.service.errors import InternalError, NotFound, RequestInvalid
from terminal.service.eventstream import build_event_router
from terminal.service.national import build_national_app
from terminal.service.pages import build_page_router
from terminal.service.pinentry import PinEntryProvider
from terminal.service.responses import error_body, error_response, http_status
from terminal.service.security import Receive, Scope, SecurityMiddleware, Send, TokenGate
from terminal.service.tokens import AccessToken

__all__ = ["ServiceApp", "create_app"]

log = logging.getLogger("sscard.service")

DESCRIPTION = """The local service of sscard for Beijing's social security card.

Business verbs only (no raw APDUs); each verb runs in one PC/SC transaction on
one card, queued per card. Every route needs `Authorization: Bearer <token>`
(the installation token; its file's path is printed at start-up). PINs only in
request bodies. Errors answer `{"error", "message" (Chinese), "message_en",
"national_code", "sw"}`. The event stream is the WebSocket `/api/v1/events`;
the national reader interface is a WebSocket on its own port (docs/service.md).
"""


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SscardError)
    async def sscard_error(request: Request, exc: SscardError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the rejected input: it may be a PIN.
        fields = [
            {"loc": ".".join(str(p) for p in err.get("loc", ())), "type": str(err.get("type", ""))}
            for err in exc.errors()
        ]
        error = RequestInvalid("the request does not fit the schema")
        body: dict[str, Any] = {**error_body(error), "fields": fields}
        return JSONResponse(body, status_code=http_status(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no endpoint {request.url.path[:100]}"))
        error = RequestInvalid(f"HTTP {exc.status_code}")
        return JSONResponse(error_body(error), status_code=exc.status_code, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
        return error_response(InternalError())


class ServiceApp:
    """The ASGI callable of both ports (see the module docstring)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        config = ctx.config

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            import asyncio

            ctx.hub.bind(asyncio.get_running_loop())
            ctx.backend.start_watch(ctx.hub.on_reader_event)
            log.info("sscard service started (API %s)", api_version())
            try:
                yield
            finally:
                ctx.close()
                ctx.hub.unbind()
                log.info("sscard service stopped")

        native = FastAPI(
            title="sscard local service",
            version=service_version(),
            description=DESCRIPTION,
            openapi_url=None,
            docs_url=None,
            redoc_url=None,
            lifespan=lifespan,
        )
        _install_handlers(native)
        native.include_router(build_router(ctx, native))
        native.include_router(build_issuance_router(ctx))
        native.include_router(build_wallet_router(ctx))
        native.include_router(build_event_router(ctx, prefix=API_PREFIX))
        native.include_router(build_page_router(ctx))

        @native.get("/", include_in_schema=False)
        async def root() -> dict[str, Any]:
            return {
                "service": "sscard",
                "api": f"{API_PREFIX}/",
                "openapi": f"{API_PREFIX}/openapi.json",
                "kiosk": "/kiosk/" if config.kiosk_enabled else None,
                "pin_page": "/pin/",
                "national": f"ws://127.0.0.1:{config.national_port}" if config.national_enabled else None,
            }

        national = build_national_app(ctx)
        _install_handlers(national)
        self.native = native
        self.national = national
        self._native_gate = TokenGate(native, ctx.token, API_PREFIX)
        self._asgi = SecurityMiddleware(self._dispatch, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            server = scope.get("server")
            port = server[1] if server else None
            if self.ctx.config.national_enabled and port == self.ctx.config.national_port:
                await self.national(scope, receive, send)
                return
        await self._native_gate(scope, receive, send)


def create_app(
    config: ServiceConfig,
    *,
    backend: CardBackend | None = None,
    pin_provider: PinEntryProvider | None = None,
    token: AccessToken | None = None,
    journal: JournalHook | None = None,
) -> ServiceApp:
    """The service for ``config`` (tests pass their own backend, PIN provider, token, journal)."""
    ctx = ServiceContext.build(
        config, backend=backend, pin_provider=pin_provider, token=token, journal=journal
    )
    return ServiceApp(ctx)

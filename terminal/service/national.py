"""The national-interface drop-in: a WebSocket on its own port, no path.

Existing counter pages open ``ws://127.0.0.1:18081``, send
``{"function": "iReadCardBas", "iType": 3}`` and read ``success`` /
``pOutInfo`` / ``message`` from the answer (formats:
:mod:`terminal.service.national_protocol`, functions:
``data/national_functions.toml``).  Messages of one connection are answered
in order.  Card functions do not wait for a card (``-2`` at once, as the
vendor drivers answer) unless ``national_card_wait_seconds`` says otherwise.

``*_HSM_Step1`` opens the card session, starts the flow against a hand-over
key source (:class:`terminal.keysource.HsmConversation`) and answers the
module request ``algorithm flag|key address|random 1|random 2|...``; the
next steps take the module's answer in ``pKey``.  The card stays queued for
this connection until the sequence ends, fails, is replaced by another
Step1, times out (``hsm_step_timeout_seconds``) or the connection closes.
A flow that needs no key answers -2204 ("no HSM needed") with its result.
Step texts and ``pKey`` hold cryptograms and PIN blocks: they are never
logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from apdu.errors import KeySourceError, SscardError
from terminal.keysource import HsmConversation
from terminal.service.cards import CardTarget, HeldSession, KeyChoice
from terminal.service.context import ServiceContext
from terminal.service.errors import HsmSequenceError, InternalError
from terminal.service.national_handlers import CARD_HANDLERS, READER_HANDLERS, uses_key_source
from terminal.service.national_protocol import (
    NationalCall,
    answer,
    error_answer,
    function_specs,
    parse_call,
    requested_function,
)

__all__ = ["NationalConnection", "build_national_app"]

log = logging.getLogger("sscard.service.national")


class _NoHsmNeeded(Exception):
    """A Step1 whose flow finished without asking the module (-2204, with its result)."""

    def __init__(self, result: str) -> None:
        super().__init__("no HSM needed")
        self.result = result


@dataclass
class _Pending:
    family: str
    steps: int
    conversation: HsmConversation[str]
    held: HeldSession
    step: int = 1
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)


class NationalConnection:
    """The state of one drop-in WebSocket connection (an HSM sequence in flight)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.pending: _Pending | None = None
        self.finished: dict[str, tuple[int, str]] = {}

    async def handle(self, raw: str | bytes) -> dict[str, Any]:
        """Answer one request message (never raises)."""
        started = time.perf_counter()
        function: str | None = None
        echo: dict[str, Any] | None = None
        try:
            function = requested_function(raw)
            call = parse_call(raw)
            function, echo = call.spec.name, call.echo
            out = await self._dispatch(call)
            body = answer(function, 0, out, echo=echo)
        except _NoHsmNeeded as done:
            body = error_answer(function, KeySourceError(kind="no_hsm_needed"), echo=echo)
            body["pOutInfo"] = done.result
        except SscardError as exc:
            body = error_answer(function, exc, echo=echo)
        except Exception:
            log.exception("national %s: unexpected failure", function or "-")
            body = error_answer(function, InternalError(), echo=echo)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("national %s -> %d (%.1f ms)", function or "-", body["success"], elapsed)
        return body

    async def _dispatch(self, call: NationalCall) -> str:
        spec = call.spec
        reader_fn = READER_HANDLERS.get(spec.handler)
        if reader_fn is not None:
            return await run_in_threadpool(reader_fn, self.ctx, call)
        pending = self.pending
        if pending is not None and not (
            spec.hsm_step is not None and spec.hsm_step > 1 and spec.family == pending.family
        ):
            # The caller moved on without finishing its step sequence: give the card back.
            log.info("national %s: abandoning the pending %s step sequence", spec.name, pending.family)
            await self.cancel_pending()
        if spec.hsm_step is None:
            return await self._plain(call)
        if spec.hsm_step == 1:
            return await self._hsm_start(call)
        return await self._hsm_continue(call)

    def _target(self, call: NationalCall) -> CardTarget:
        itype = call.args.get("iType", 3)
        return CardTarget(
            reader=None,
            itype=itype if isinstance(itype, int) else 3,
            wait=self.ctx.config.national_card_wait_seconds,
        )

    async def _plain(self, call: NationalCall) -> str:
        handler = CARD_HANDLERS[call.spec.handler]
        choice: KeyChoice = "configured" if uses_key_source(call) else "none"
        return await run_in_threadpool(
            partial(
                self.ctx.runner.run,
                call.spec.operation,
                self._target(call),
                lambda session: handler.fn(self.ctx, session, call, None),
                key_source=choice,
            )
        )

    # -- HSM step sequences -------------------------------------------------------------------

    async def _hsm_start(self, call: NationalCall) -> str:
        handler = CARD_HANDLERS[call.spec.handler]
        await self.cancel_pending()
        self.finished.pop(call.spec.family, None)
        runner = self.ctx.runner
        held = await run_in_threadpool(
            partial(runner.hold, call.spec.operation, self._target(call), key_source="none")
        )
        conversation: HsmConversation[str] = HsmConversation(
            lambda keys: handler.fn(self.ctx, held.session, call, keys),
            timeout=self.ctx.config.hsm_step_timeout_seconds,
            terminal_number=self.ctx.config.terminal_number,
        )
        try:
            step = await run_in_threadpool(conversation.start)
        except SscardError as exc:
            held.close(ok=False, error=exc)
            raise
        except BaseException:
            held.close(ok=False)
            raise
        if step.done:
            held.close(ok=True)
            raise _NoHsmNeeded(step.result or "")
        self.pending = _Pending(call.spec.family, call.spec.hsm_steps or 2, conversation, held)
        self._arm_expiry(self.pending)
        assert step.request is not None
        return step.request

    async def _hsm_continue(self, call: NationalCall) -> str:
        spec = call.spec
        assert spec.hsm_step is not None
        pending = self.pending
        if pending is None or pending.family != spec.family:
            done = self.finished.get(spec.family)
            if done is not None and spec.hsm_step == done[0] + 1:
                self.finished.pop(spec.family)
                return done[1]
            raise HsmSequenceError(f"{spec.name}: no earlier step of this function is pending")
        expected = min(pending.step + 1, pending.steps)
        if spec.hsm_step != expected:
            raise HsmSequenceError(f"{spec.name}: step {expected} expected")
        if pending.expiry is not None:
            pending.expiry.cancel()
        try:
            step = await run_in_threadpool(pending.conversation.answer, call.text_arg("pKey"))
        except SscardError as exc:
            self._drop(pending, ok=False, error=exc)
            raise
        except BaseException:
            self._drop(pending, ok=False)
            raise
        if step.done:
            self._drop(pending, ok=True)
            out = step.result or ""
            self.finished[spec.family] = (spec.hsm_step, out)
            return out
        pending.step = spec.hsm_step
        self._arm_expiry(pending)
        assert step.request is not None
        return step.request

    def _arm_expiry(self, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.ctx.config.hsm_step_timeout_seconds
        pending.expiry = loop.call_later(timeout, lambda: asyncio.ensure_future(self._expire(pending)))

    async def _expire(self, pending: _Pending) -> None:
        if self.pending is pending:
            log.info("national %s: HSM step sequence abandoned after the timeout", pending.family)
            await self.cancel_pending()

    def _drop(self, pending: _Pending, *, ok: bool, error: SscardError | None = None) -> None:
        if pending.expiry is not None:
            pending.expiry.cancel()
        if self.pending is pending:
            self.pending = None
        pending.held.close(ok=ok, error=error)

    async def cancel_pending(self) -> None:
        """Abort the sequence in flight (its flow ends with a key source error)."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        if pending.expiry is not None:
            pending.expiry.cancel()
        await run_in_threadpool(pending.conversation.cancel)
        pending.held.close(ok=False, error=KeySourceError("the security module step sequence was abandoned"))


def build_national_app(ctx: ServiceContext) -> FastAPI:
    """The ASGI app of the national port: the WebSocket at ``/`` and a short
    JSON description for plain HTTP GETs."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/", include_in_schema=False)
    async def describe() -> dict[str, Any]:
        return {
            "service": "sscard national reader interface (WebSocket)",
            "websocket": f"ws://127.0.0.1:{ctx.config.national_port}",
            "functions": sorted(function_specs()),
        }

    @app.websocket("/")
    async def national(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = NationalConnection(ctx)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                body = await connection.handle(raw)
                try:
                    await websocket.send_text(json.dumps(body, ensure_ascii=False))
                except (WebSocketDisconnect, OSError, RuntimeError):
                    # The page closed the connection while its call ran: nobody to answer.
                    log.info("national %s: the caller left before the answer", body.get("function") or "-")
                    break
        finally:
            await connection.cancel_pending()

    return app

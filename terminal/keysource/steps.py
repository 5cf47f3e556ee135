"""Run a flow against an outside security module, one step at a time.

The national ``*_HSM_Step1/2/3`` functions return the module's request to
the caller (a counter page that forwards it to its HSM) and take the answer
in the next call.  :class:`HsmConversation` gives any flow that shape: the
flow runs in a worker thread with an :class:`~terminal.keysource.hsm.HsmKeySource`
whose module is a hand-over point; every key source call suspends the flow
and surfaces its step-1 text as :class:`HsmStep` ``request``, and
:meth:`HsmConversation.answer` resumes it::

    conversation = HsmConversation(lambda keys: read_holder(session, key_source=keys))
    step = conversation.start()            # step 1: step.request = "03|0003|...|"
    step = conversation.answer(pkey)       # step 2: step.done, step.result = HolderInfo

A flow that needs no key answers ``done`` at once (the national -2204 "no
HSM needed" case is then the caller's to report).  The card session stays
open and its transaction held between steps; an answer that does not come
within ``timeout`` seconds, or :meth:`cancel`, aborts the flow with
``KeySourceError`` (journalled as failed).  Errors of the flow are raised
from ``start``/``answer``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from apdu.errors import KeySourceError
from terminal.keysource.base import KeySource
from terminal.keysource.hsm import HsmKeySource

__all__ = ["HsmConversation", "HsmStep"]

T = TypeVar("T")

_CANCEL = object()


@dataclass(frozen=True, slots=True)
class HsmStep(Generic[T]):
    """State after a step: ``request`` for the module, or the flow's ``result``.

    ``number`` counts the steps (1 after :meth:`HsmConversation.start`).
    ``repr`` hides the request (a MAC request over a PIN command holds the PIN block).
    """

    number: int
    request: str | None = field(default=None, repr=False)
    result: T | None = None

    @property
    def done(self) -> bool:
        return self.request is None


class _Bridge:
    """The HsmModule the worker's key source talks to."""

    def __init__(self, conversation: HsmConversation[object]) -> None:
        self._conversation = conversation

    def process(self, request: str) -> str:
        return self._conversation._exchange(request)


class HsmConversation(Generic[T]):
    """One flow run step by step against an outside security module."""

    def __init__(
        self,
        flow: Callable[[KeySource], T],
        *,
        timeout: float = 120.0,
        terminal_number: str = "",
    ) -> None:
        self._flow = flow
        self._timeout = timeout
        self._terminal_number = terminal_number
        self._to_caller: queue.Queue[tuple[str, object]] = queue.Queue()
        self._to_worker: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._steps = 0
        self._finished = False
        self._waiting = False

    @property
    def done(self) -> bool:
        return self._finished

    @property
    def steps(self) -> int:
        return self._steps

    def start(self) -> HsmStep[T]:
        """Run the flow up to its first key request (or to its end)."""
        if self._thread is not None:
            raise KeySourceError("security module conversation already started")
        source = HsmKeySource(_Bridge(self), terminal_number=self._terminal_number)  # type: ignore[arg-type]
        self._thread = threading.Thread(
            target=self._work, args=(source,), name="sscard-hsm-steps", daemon=True
        )
        self._thread.start()
        return self._next()

    def answer(self, text: str) -> HsmStep[T]:
        """Give the module's answer to the pending request; run to the next one."""
        if self._thread is None or self._finished or not self._waiting:
            raise KeySourceError("no security module request is pending", kind="no_hsm_needed")
        self._waiting = False
        self._to_worker.put(text)
        return self._next()

    def cancel(self) -> None:
        """Abort the flow at its pending request (journalled as failed)."""
        if self._thread is not None and not self._finished:
            self._to_worker.put(_CANCEL)
            self._thread.join(timeout=self._timeout)
            self._finished = True

    # -- worker side ------------------------------------------------------------------

    def _work(self, source: HsmKeySource) -> None:
        try:
            result = self._flow(source)
        except BaseException as exc:
            self._to_caller.put(("error", exc))
        else:
            self._to_caller.put(("done", result))

    def _exchange(self, request: str) -> str:
        self._to_caller.put(("request", request))
        try:
            answer = self._to_worker.get(timeout=self._timeout)
        except queue.Empty:
            raise KeySourceError("the security module answer did not come in time") from None
        if answer is _CANCEL or not isinstance(answer, str):
            raise KeySourceError("the security module step was cancelled")
        return answer

    # -- caller side --------------------------------------------------------------------

    def _next(self) -> HsmStep[T]:
        try:
            kind, value = self._to_caller.get(timeout=self._timeout)
        except queue.Empty:
            self._finished = True
            raise KeySourceError("the flow did not reach its next step in time") from None
        self._steps += 1
        if kind == "request":
            assert isinstance(value, str)
            self._waiting = True
            return HsmStep(self._steps, request=value)
        self._finished = True
        if kind == "error":
            assert isinstance(value, BaseException)
            raise value
        return HsmStep(self._steps, result=value)  # type: ignore[arg-type]

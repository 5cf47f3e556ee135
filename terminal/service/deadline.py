"""A bounded wait for the card's answer: a card that stops answering (mute)
gives a clean ``card_mute`` error (-4) instead of a request that never ends.

PC/SC has no time limit of its own for SCardTransmit on readers such as
vpcd, and no call can interrupt a blocked one (pcsc-lite holds the
context's lock for the whole call).  :class:`DeadlineTransport` therefore
runs every call of its inner transport in one worker thread of its own (a
PC/SC transport is not shared between threads: the transaction lock is
held by the thread that began it) and waits for the answer at most
``limit`` seconds.  When the card is too late, the calling flow gets
:class:`apdu.errors.CardMuteError`, the transport is abandoned (later calls
fail at once, the disconnect runs in the worker when the blocked call
returns) and :class:`MuteReaders` remembers the reader until then: a new
session on it fails at once with the same error instead of blocking behind
the stuck one.  Reader control calls (a PIN pad waiting for the holder) are
not bounded.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from apdu.errors import CardMuteError
from apdu.transport import ProtocolName, Transport

__all__ = ["DeadlineTransport", "MuteReaders"]

log = logging.getLogger("sscard.service.deadline")

T = TypeVar("T")
_STOP = object()


class MuteReaders:
    """Readers whose card did not answer in time and whose blocked call has
    not returned yet (thread-safe counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stuck: dict[str, int] = {}

    def add(self, reader: str) -> None:
        with self._lock:
            self._stuck[reader] = self._stuck.get(reader, 0) + 1

    def done(self, reader: str) -> None:
        with self._lock:
            left = self._stuck.get(reader, 0) - 1
            if left > 0:
                self._stuck[reader] = left
            else:
                self._stuck.pop(reader, None)

    def __contains__(self, reader: object) -> bool:
        with self._lock:
            return reader in self._stuck

    def check(self, reader: str) -> None:
        """CardMuteError when the card in ``reader`` still has not answered."""
        if reader in self:
            raise CardMuteError(f"{reader}: the card still does not answer")


class _Call:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class DeadlineTransport:
    """:class:`apdu.transport.Transport` over ``inner``; see the module docstring."""

    def __init__(self, inner: Transport, limit: float, mute: MuteReaders) -> None:
        self.inner = inner
        self.limit = limit
        self.mute = mute
        self._queue: queue.SimpleQueue[_Call | object] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._abandoned = False
        self._transactions: list[AbstractContextManager[None]] = []
        # One caller at a time: every call runs in the one worker thread, so the
        # inner transport's own lock and PC/SC transaction cannot keep a second
        # caller out of a transaction (a PSAM shared by several sessions).
        self._callers = threading.RLock()
        if callable(getattr(inner, "status", None)):
            self.status = self._status
        if callable(getattr(inner, "control", None)) and callable(getattr(inner, "features", None)):
            self.control = self._control
            self.features = self._features

    # -- the worker ----------------------------------------------------------------------------

    @staticmethod
    def _serve(calls: queue.SimpleQueue[_Call | object]) -> None:
        while True:
            item = calls.get()
            if item is _STOP:
                return
            assert isinstance(item, _Call)
            try:
                item.value = item.fn()
            except BaseException as exc:
                item.error = exc
            item.done.set()

    def _submit(self, fn: Callable[[], Any]) -> _Call:
        if self._worker is None:
            # a queue per worker: a stopped worker never takes a later call
            self._queue = queue.SimpleQueue()
            self._worker = threading.Thread(
                target=self._serve, args=(self._queue,), name="sscard-card-io", daemon=True
            )
            self._worker.start()
        call = _Call(fn)
        self._queue.put(call)
        return call

    def _call(self, fn: Callable[[], T], *, bounded: bool = True) -> T:
        with self._callers:
            return self._call_alone(fn, bounded=bounded)

    def _call_alone(self, fn: Callable[[], T], *, bounded: bool) -> T:
        if self._abandoned:
            raise CardMuteError(f"{self.inner.reader}: the card does not answer")
        call = self._submit(fn)
        if not call.done.wait(self.limit if bounded else None):
            self._abandon()
            raise CardMuteError(f"{self.inner.reader}: no answer from the card within {self.limit:g} s")
        if not self.inner.connected and not self._transactions:
            # a failed connect or a lost card: nothing more to serve (an open
            # transaction is still ended by this worker, the thread that holds it)
            self._stop_worker()
        if call.error is not None:
            raise call.error
        value: T = call.value
        return value

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker = None

    def _abandon(self) -> None:
        self._abandoned = True
        reader = self.inner.reader
        self.mute.add(reader)
        log.warning("%s: the card does not answer; the session is abandoned", reader)

        def release() -> None:
            # Runs in the worker once the blocked call returned (the card answered late or left).
            while self._transactions:
                cm = self._transactions.pop()
                try:
                    cm.__exit__(None, None, None)
                except Exception as exc:
                    log.debug("ending the abandoned transaction: %s", type(exc).__name__)
            try:
                self.inner.disconnect()
            except Exception as exc:
                log.debug("disconnecting the abandoned session: %s", type(exc).__name__)
            self.mute.done(reader)
            log.info("%s: the abandoned session ended", reader)

        self._submit(release)
        self._queue.put(_STOP)

    # -- Transport ------------------------------------------------------------------------------

    @property
    def reader(self) -> str:
        return self.inner.reader

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def protocol(self) -> ProtocolName:
        return self.inner.protocol

    @property
    def connected(self) -> bool:
        return not self._abandoned and self.inner.connected

    def connect(self) -> None:
        # A card that stopped answering: card_mute at once, not another blocked session.
        self.mute.check(self.inner.reader)
        self._call(self.inner.connect)

    def disconnect(self) -> None:
        if self._abandoned:
            return
        try:
            self._call(self.inner.disconnect)
        finally:
            if not self._abandoned:
                self._stop_worker()

    def reconnect(self, reset: bool = False) -> None:
        self._call(lambda: self.inner.reconnect(reset))

    def transmit(self, apdu: bytes) -> bytes:
        return self._call(lambda: self.inner.transmit(apdu))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        def begin() -> None:
            cm = self.inner.transaction()
            cm.__enter__()
            self._transactions.append(cm)

        def end() -> None:
            if self._transactions:
                self._transactions.pop().__exit__(None, None, None)

        with self._callers:
            self._call(begin)
            try:
                yield
            finally:
                if not self._abandoned:
                    self._call(end)

    def _status(self) -> tuple[int, bytes]:
        result: tuple[int, bytes] = self._call(self.inner.status)  # type: ignore[attr-defined]
        return result

    def _control(self, code: int, data: bytes = b"") -> bytes:
        result: bytes = self._call(lambda: self.inner.control(code, data), bounded=False)  # type: ignore[attr-defined]
        return result

    def _features(self) -> dict[int, int]:
        result: dict[int, int] = self._call(self.inner.features)  # type: ignore[attr-defined]
        return result

    def __repr__(self) -> str:
        return f"DeadlineTransport({self.inner!r}, {self.limit:g} s)"

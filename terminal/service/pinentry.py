"""PIN entry providers behind one interface, and the PIN desk that applies
the per-card rate limit to every PIN attempt.

The national ``iVerifyPIN`` / ``iChangePIN`` take no PIN: the holder types it
at the terminal.  :class:`PinEntryProvider` is that "typing" step:

- :class:`PinPadEntry`: the reader's own PIN pad (PC/SC part 10
  ``FEATURE_VERIFY_PIN_DIRECT`` / ``FEATURE_MODIFY_PIN_DIRECT``, found by
  feature discovery); the PIN never reaches the computer;
- :class:`PinPageEntry`: the service's own PIN page (``/pin/``); the
  calling counter page never sees the PIN;
- :class:`AutoPinEntry`: the PIN pad when the reader has the feature, else
  the PIN page (``pin.entry = "auto"``);
- :class:`ScriptedPinEntry`: PINs (or entry failures) queued by a program,
  for tests and unattended checks.

Typed PINs are held in ``bytearray`` buffers and wiped after use.  The
terminal API takes the PIN as ``str``; that short-lived copy cannot be wiped
in Python (docs/service.md, "PIN handling").
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal, Protocol, TypeVar

from apdu.errors import InvalidInput, PinEntryError, PinError, SscardError
from terminal import flows
from terminal.flows.results import PinOperationResult
from terminal.service.backend import CardBackend
from terminal.service.errors import PinEntryUnavailable
from terminal.service.pcsc_control import ControlChannel
from terminal.service.pinpad import pinpad_change, pinpad_verify, supports
from terminal.service.pinpage import PinPageBroker, wipe
from terminal.service.ratelimit import PinRateLimiter
from terminal.session import CardSession

__all__ = [
    "AutoPinEntry",
    "PinDesk",
    "PinEntryProvider",
    "PinPadEntry",
    "PinPageEntry",
    "ScriptedPinEntry",
    "typed_change",
    "typed_verify",
]

PinOperation = Literal["verify", "change"]
T = TypeVar("T")


def _text(pin: bytearray) -> str:
    try:
        return pin.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput("PIN: only decimal digits are allowed", kind="chars") from None


def typed_verify(
    session: CardSession, pin: bytearray, *, for_transaction: bool = False
) -> PinOperationResult:
    """``flows.verify_pin`` with a PIN buffer, wiped afterwards."""
    try:
        return flows.verify_pin(session, _text(pin), for_transaction=for_transaction)
    finally:
        wipe(pin)


def typed_change(session: CardSession, old: bytearray, new: bytearray) -> PinOperationResult:
    """``flows.change_pin`` with PIN buffers, wiped afterwards."""
    try:
        return flows.change_pin(session, _text(old), _text(new))
    finally:
        wipe(old, new)


class PinEntryProvider(Protocol):
    """A way for the holder to type the PIN at the terminal."""

    name: str

    def available(self, session: CardSession, operation: PinOperation) -> bool: ...

    def verify(self, session: CardSession, *, for_transaction: bool = False) -> PinOperationResult: ...

    def change(self, session: CardSession) -> PinOperationResult: ...


class PinPadEntry:
    """The reader's PIN pad (part 10 features of the reader in the session)."""

    name = "pinpad"

    def __init__(self, backend: CardBackend, *, timeout: float) -> None:
        self.backend = backend
        self.timeout = max(1, int(timeout))

    def available(self, session: CardSession, operation: PinOperation) -> bool:
        return supports(self.backend.control_channel(session.transport), operation)

    def _channel(self, session: CardSession, operation: PinOperation) -> ControlChannel:
        channel = self.backend.control_channel(session.transport)
        if channel is None or not supports(channel, operation):
            raise PinEntryUnavailable(f"{session.transport.reader}: the reader has no PIN pad feature")
        return channel

    def verify(self, session: CardSession, *, for_transaction: bool = False) -> PinOperationResult:
        channel = self._channel(session, "verify")
        return pinpad_verify(session, channel, timeout=self.timeout, for_transaction=for_transaction)

    def change(self, session: CardSession) -> PinOperationResult:
        return pinpad_change(session, self._channel(session, "change"), timeout=self.timeout)


class PinPageEntry:
    """The service's PIN page (see :mod:`terminal.service.pinpage`)."""

    name = "page"

    def __init__(self, broker: PinPageBroker, *, timeout: float) -> None:
        self.broker = broker
        self.timeout = timeout

    def available(self, session: CardSession, operation: PinOperation) -> bool:
        return True

    def verify(self, session: CardSession, *, for_transaction: bool = False) -> PinOperationResult:
        (pin,) = self.broker.request(
            "verify", reader=session.transport.reader, operation="pin.verify", timeout=self.timeout
        )
        return typed_verify(session, pin, for_transaction=for_transaction)

    def change(self, session: CardSession) -> PinOperationResult:
        old, new = self.broker.request(
            "change", reader=session.transport.reader, operation="pin.change", timeout=self.timeout
        )
        return typed_change(session, old, new)


class AutoPinEntry:
    """The PIN pad where the reader has one, else the fallback (the PIN page)."""

    name = "auto"

    def __init__(self, pinpad: PinPadEntry, fallback: PinEntryProvider) -> None:
        self.pinpad = pinpad
        self.fallback = fallback

    def available(self, session: CardSession, operation: PinOperation) -> bool:
        return True

    def choose(self, session: CardSession, operation: PinOperation) -> PinEntryProvider:
        return self.pinpad if self.pinpad.available(session, operation) else self.fallback

    def verify(self, session: CardSession, *, for_transaction: bool = False) -> PinOperationResult:
        return self.choose(session, "verify").verify(session, for_transaction=for_transaction)

    def change(self, session: CardSession) -> PinOperationResult:
        return self.choose(session, "change").change(session)


class ScriptedPinEntry:
    """PINs queued by a program: ``push("211008")``, ``push(PinEntryError(kind="cancelled"))``.
    A change takes two entries (old, new).  An empty queue is a timeout (-32)."""

    name = "scripted"

    def __init__(self, entries: Iterable[str | SscardError] = ()) -> None:
        self._queue: deque[bytearray | SscardError] = deque()
        self._lock = threading.Lock()
        self.push(*entries)

    def push(self, *entries: str | SscardError) -> None:
        with self._lock:
            for entry in entries:
                self._queue.append(entry if isinstance(entry, SscardError) else bytearray(entry.encode()))

    def clear(self) -> None:
        with self._lock:
            while self._queue:
                entry = self._queue.popleft()
                if isinstance(entry, bytearray):
                    wipe(entry)

    def available(self, session: CardSession, operation: PinOperation) -> bool:
        return True

    def _next(self) -> bytearray:
        with self._lock:
            if not self._queue:
                raise PinEntryError("no scripted PIN entry left", kind="timeout")
            entry = self._queue.popleft()
        if isinstance(entry, SscardError):
            raise entry
        return entry

    def verify(self, session: CardSession, *, for_transaction: bool = False) -> PinOperationResult:
        return typed_verify(session, self._next(), for_transaction=for_transaction)

    def change(self, session: CardSession) -> PinOperationResult:
        old = self._next()
        try:
            new = self._next()
        except SscardError:
            wipe(old)
            raise
        return typed_change(session, old, new)


class PinDesk:
    """Every PIN attempt of the service goes through here: the per-card rate
    limit, then the typed PIN (native API, kiosk) or the entry provider."""

    def __init__(self, provider: PinEntryProvider, limiter: PinRateLimiter) -> None:
        self.provider = provider
        self.limiter = limiter

    def _guarded(self, session: CardSession, attempt: Callable[[], T], *buffers: bytearray) -> T:
        card = session.card_id
        try:
            self.limiter.check(card)
        except SscardError:
            wipe(*buffers)
            raise
        try:
            result = attempt()
        except PinError:
            self.limiter.failed(card)
            raise
        self.limiter.succeeded(card)
        return result

    def verify(
        self, session: CardSession, *, pin: bytearray | None = None, for_transaction: bool = False
    ) -> PinOperationResult:
        if pin is not None:
            return self._guarded(
                session, lambda: typed_verify(session, pin, for_transaction=for_transaction), pin
            )
        return self._guarded(session, lambda: self.provider.verify(session, for_transaction=for_transaction))

    def change(
        self, session: CardSession, *, old: bytearray | None = None, new: bytearray | None = None
    ) -> PinOperationResult:
        if old is not None and new is not None:
            return self._guarded(session, lambda: typed_change(session, old, new), old, new)
        if old is not None or new is not None:
            wipe(*(b for b in (old, new) if b is not None))
            raise InvalidInput("give both the old and the new PIN, or neither", kind="parameter")
        return self._guarded(session, lambda: self.provider.change(session))

"""In-process transport: attach an emulated card object directly (no PC/SC).

The card is any object with ``atr() -> bytes`` and ``process(apdu) -> bytes``
and optionally ``power_on()``, ``power_off()``, ``reset()`` (the same shape
as a vpcd virtual card).  ``insert``/``remove`` simulate moving the card.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from apdu.errors import CardMuteError, CardRemovedError, NoCardError, TransportError
from apdu.transport import ProtocolName

__all__ = ["CardLike", "InProcessTransport"]


class CardLike(Protocol):
    def atr(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...


class InProcessTransport:
    """A :class:`~apdu.transport.Transport` over a Python card object."""

    def __init__(
        self,
        card: CardLike | None = None,
        *,
        reader: str = "In-process card",
        protocol: ProtocolName = "T0",
    ) -> None:
        self._card = card
        self._reader = reader
        self._protocol: ProtocolName = protocol
        self._connected = False
        self._atr: bytes | None = None
        self._lock = threading.RLock()
        self._removed_during_session = False

    # -- card movement ---------------------------------------------------

    @property
    def card(self) -> CardLike | None:
        return self._card

    def insert(self, card: CardLike) -> None:
        self._card = card
        self._removed_during_session = False

    def remove(self) -> None:
        if self._card is not None and self._connected:
            self._removed_during_session = True
        self._card = None

    # -- Transport ---------------------------------------------------------

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def protocol(self) -> ProtocolName:
        return self._protocol

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def atr(self) -> bytes:
        if not self._connected or self._atr is None:
            raise NoCardError(f"{self._reader}: not connected")
        return self._atr

    def connect(self) -> None:
        card = self._card
        if card is None:
            raise NoCardError(f"{self._reader}: no card")
        power_on = getattr(card, "power_on", None)
        if callable(power_on):
            power_on()
        atr = card.atr()
        if not atr:
            raise CardMuteError(f"{self._reader}: the card gave no ATR")
        self._atr = bytes(atr)
        self._connected = True
        self._removed_during_session = False

    def disconnect(self) -> None:
        if self._connected and self._card is not None:
            power_off = getattr(self._card, "power_off", None)
            if callable(power_off):
                power_off()
        self._connected = False
        self._atr = None

    def reconnect(self, reset: bool = False) -> None:
        card = self._card
        if card is None:
            self._connected = False
            raise CardRemovedError(f"{self._reader}: the card was removed")
        if reset:
            reset_fn = getattr(card, "reset", None)
            if callable(reset_fn):
                reset_fn()
        self._atr = bytes(card.atr())
        self._connected = True
        self._removed_during_session = False

    def transmit(self, apdu: bytes) -> bytes:
        with self._lock:
            card = self._card
            if card is None:
                if self._removed_during_session:
                    raise CardRemovedError(f"{self._reader}: the card was removed")
                raise NoCardError(f"{self._reader}: no card")
            if not self._connected:
                raise TransportError(f"{self._reader}: transmit before connect")
            answer = card.process(bytes(apdu))
            if not answer:
                raise CardMuteError(f"{self._reader}: the card gave no answer")
            return bytes(answer)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

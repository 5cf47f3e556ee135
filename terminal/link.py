"""A transport wrapper that turns a lost card into a clear error.

Some readers (the vsmartcard vpcd driver among them) answer a command during
which the card went away with an empty response instead of a PC/SC error;
:mod:`apdu.protocol` would report that as a malformed response.
:class:`GuardedTransport` checks every answer: fewer than two bytes means the
card is gone or mute.  It asks the reader (SCardStatus, polled for up to
``settle`` seconds while the reader notices the removal) and raises
:class:`~apdu.errors.CardRemovedError` (-2) when the card is gone, else
:class:`~apdu.errors.CardMuteError` (-4).  Both are transport errors, so a
write in flight is journalled as torn.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

from apdu.errors import CardMuteError, CardRemovedError, NoCardError, SscardError
from apdu.transport import ProtocolName, Transport

__all__ = ["GuardedTransport"]

POLL = 0.02


class GuardedTransport:
    """:class:`apdu.transport.Transport` delegating to ``inner``; see the module docstring."""

    def __init__(self, inner: Transport, *, settle: float = 1.5) -> None:
        self.inner = inner
        self.settle = settle

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
        return self.inner.connected

    def connect(self) -> None:
        self.inner.connect()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def reconnect(self, reset: bool = False) -> None:
        self.inner.reconnect(reset)

    def transaction(self) -> AbstractContextManager[None]:
        return self.inner.transaction()

    def transmit(self, apdu: bytes) -> bytes:
        raw = self.inner.transmit(apdu)
        if len(raw) >= 2:
            return raw
        raise self._lost()

    def _lost(self) -> SscardError:
        status = getattr(self.inner, "status", None)
        deadline = time.monotonic() + self.settle
        while callable(status):
            try:
                status()
            except NoCardError as exc:
                return CardRemovedError(
                    f"{self.reader}: the card was removed during a command ({exc.error_id})"
                )
            except SscardError as exc:
                return CardMuteError(f"{self.reader}: no answer from the card ({exc.error_id})")
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL)
        return CardMuteError(f"{self.reader}: the card gave an empty answer")

"""The one small interface every card link implements.

Implementations: :class:`apdu.pcsc.PcscTransport` (PC/SC readers via pyscard)
and :class:`apdu.inprocess.InProcessTransport` (an emulated card object in the
same process).  ``transmit`` takes and returns raw bytes (the response
includes SW1 SW2); protocol handling (61xx, 6Cxx, chaining) is in
:mod:`apdu.protocol`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal, Protocol

__all__ = ["ProtocolName", "Transport"]

ProtocolName = Literal["T0", "T1"]


class Transport(Protocol):
    @property
    def reader(self) -> str:
        """Reader (or virtual slot) name."""
        ...

    @property
    def atr(self) -> bytes:
        """ATR of the connected card (raises NoCardError when not connected)."""
        ...

    @property
    def protocol(self) -> ProtocolName:
        """Negotiated transmission protocol."""
        ...

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None:
        """Power/connect the card (NoCardError, CardMuteError, SharingViolationError...)."""
        ...

    def disconnect(self) -> None:
        """Release the card (idempotent)."""
        ...

    def reconnect(self, reset: bool = False) -> None:
        """Re-establish the connection, optionally warm-resetting the card
        (all card session state is then lost)."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU, return the raw response including SW."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Exclusive access to the card for the duration of the block."""
        ...

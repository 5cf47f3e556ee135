"""Where the service gets its readers and cards from.

:class:`CardBackend` is the small surface the service needs: list readers,
open a transport to one, open the PSAM, the reader's PC/SC part 10 control
channel (PIN pad), and reader / card events.  :class:`PcscBackend` is the
real one (pcscd through :mod:`apdu.pcsc`, events from
:class:`terminal.watch.ReaderWatcher`, every card answer awaited at most
``service.card_answer_timeout_seconds``: :mod:`terminal.service.deadline`);
tests plug in-process cards in through the same protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from apdu.errors import SscardError
from apdu.transport import Transport
from terminal.keysource.base import KeySource
from terminal.readers import ReaderInfo, find_psam_reader, list_readers
from terminal.service.deadline import DeadlineTransport, MuteReaders
from terminal.service.pcsc_control import ControlChannel, TransportControlChannel
from terminal.watch import ReaderEvent, ReaderWatcher

__all__ = ["CardBackend", "PcscBackend"]

log = logging.getLogger("sscard.service.backend")

EventCallback = Callable[[ReaderEvent], None]


class CardBackend(Protocol):
    """The reader side of the service (see the module docstring)."""

    name: str

    def readers(self) -> list[ReaderInfo]:
        """Every reader with its kind and card; PcscUnavailableError without PC/SC."""
        ...

    def open_transport(self, reader: str) -> Transport:
        """A not yet connected transport to the card in ``reader`` (full name)."""
        ...

    def control_channel(self, transport: Transport) -> ControlChannel | None:
        """The reader's part 10 control channel of a connected transport, if any."""
        ...

    def open_psam(self, pattern: str) -> KeySource:
        """The PSAM key source (``pattern`` narrows the reader; "" finds it)."""
        ...

    def start_watch(self, callback: EventCallback) -> None:
        """Report reader and card events to ``callback`` (from any thread)."""
        ...

    def stop_watch(self) -> None: ...


class PcscBackend:
    """Readers through pcscd."""

    name = "pcsc"

    def __init__(self, *, poll_ms: int = 250, answer_timeout: float = 0.0) -> None:
        self._watcher: ReaderWatcher | None = None
        self._poll_ms = poll_ms
        self._answer_timeout = answer_timeout
        self.mute = MuteReaders()

    def readers(self) -> list[ReaderInfo]:
        return list_readers()

    def open_transport(self, reader: str) -> Transport:
        from apdu.pcsc import PcscTransport

        transport = PcscTransport(reader, dispose="reset_if_changed")
        if self._answer_timeout <= 0:
            return transport
        return DeadlineTransport(transport, self._answer_timeout, self.mute)

    def control_channel(self, transport: Transport) -> ControlChannel | None:
        return TransportControlChannel.for_transport(transport)

    def open_psam(self, pattern: str) -> KeySource:
        from terminal.keysource import PsamKeySource

        reader = find_psam_reader(pattern=pattern or None)
        if self._answer_timeout <= 0:
            return PsamKeySource.open(reader.name)
        # a PSAM that stops answering is as bounded as a card (no_psam, -2201)
        return PsamKeySource(self.open_transport(reader.name))

    def start_watch(self, callback: EventCallback) -> None:
        if self._watcher is not None:
            return
        self._watcher = ReaderWatcher(poll_ms=self._poll_ms, initial=True)
        self._watcher.start(callback)

    def stop_watch(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            try:
                watcher.stop()
            except SscardError as exc:
                log.warning("stopping the reader watcher: %s", exc.error_id)

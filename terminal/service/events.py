"""Event plumbing: reader / card events and flow progress, fanned out to
WebSocket subscribers of ``/api/v1/events``.

:class:`EventHub` takes events from any thread (the reader watcher, card
operations in worker threads) and hands them to the asyncio subscribers of
the running loop; every subscriber has a bounded queue (the oldest events
are dropped for a subscriber that does not read).  Card events carry the
card's kind (``social_security``, ``psam``, ``other``) decided from the ATR.
The hub also wakes threads that wait for a card (:meth:`EventHub.wait_for_change`).
Events never carry PINs, tokens or personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from terminal.readers import classify, is_ssc_atr
from terminal.service._data import load_data
from terminal.watch import ReaderEvent

__all__ = ["EventHub", "Subscription", "card_kind", "make_event"]

log = logging.getLogger("sscard.service.events")

QUEUE_SIZE = 256


def card_kind(reader: str, atr: bytes | None) -> str | None:
    """``social_security`` / ``psam`` / ``other`` for a card's ATR (None: no card)."""
    if atr is None:
        return None
    if is_ssc_atr(atr):
        return "social_security"
    kind, _ = classify(reader, atr)
    return "psam" if kind == "psam" else "other"


def _texts() -> dict[str, Any]:
    return load_data("events")


def make_event(name: str, **fields: Any) -> dict[str, Any]:
    """An event dict ``{"event", "at", ..., "message", "message_en"}`` with the
    Chinese text of events.toml formatted from ``fields``."""
    texts = _texts()
    row = texts["events"][name]
    values = {
        "card_kind_text": texts["card_kind"].get(str(fields.get("card_kind")), ""),
        "operation_text": texts["operations"].get(
            str(fields.get("operation")), str(fields.get("operation", ""))
        ),
        "step_text": texts["steps"].get(str(fields.get("step")), str(fields.get("step", ""))),
        "result_text": texts["results"]["ok" if fields.get("ok") else "failed"],
    }
    event: dict[str, Any] = {"event": name, "at": datetime.now(UTC).isoformat()}
    event.update(fields)
    event["message"] = str(row["zh"]).format(**values)
    event["message_en"] = str(row["en"])
    return event


class Subscription:
    """One subscriber's queue of events."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def next(self) -> dict[str, Any]:
        return await self.queue.get()


class EventHub:
    """See the module docstring."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()
        self._cond = threading.Condition()
        self._generation = 0
        self._cards: dict[str, str | None] = {}
        self._readers: dict[str, dict[str, Any]] = {}
        self.pcsc_available: bool | None = None

    # -- loop binding -------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def unbind(self) -> None:
        self._loop = None

    # -- publishing ---------------------------------------------------------------------

    def publish(self, name: str, **fields: Any) -> dict[str, Any]:
        """Build event ``name`` and deliver it to every subscriber (any thread)."""
        event = make_event(name, **fields)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._deliver(event)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._deliver, event)
        return event

    def _deliver(self, event: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(event)

    def on_reader_event(self, event: ReaderEvent) -> None:
        """The watcher callback: rename, add the card kind, publish, wake waiters."""
        rename: dict[str, str] = _texts()["rename"]
        name = rename[event.kind]
        fields: dict[str, Any] = {
            "reader": event.reader,
            "reader_kind": event.reader_kind,
        }
        if event.kind == "card_inserted" and event.reader is not None:
            kind = card_kind(event.reader, event.atr)
            self._cards[event.reader] = kind
            fields["card_kind"] = kind
            fields["atr"] = event.atr.hex().upper() if event.atr else None
        elif event.kind == "card_removed" and event.reader is not None:
            fields["card_kind"] = self._cards.pop(event.reader, None)
        if event.kind == "reader_added" and event.reader is not None:
            self._readers[event.reader] = {"name": event.reader, "kind": event.reader_kind}
        elif event.kind == "reader_removed" and event.reader is not None:
            self._readers.pop(event.reader, None)
            self._cards.pop(event.reader, None)
        elif event.kind in ("pcsc_unavailable", "pcsc_available"):
            self.pcsc_available = event.kind == "pcsc_available"
        if event.kind in ("reader_added", "card_inserted", "card_removed"):
            self.pcsc_available = True
        self.publish(name, **fields)
        self.notify_change()

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def snapshot(self) -> list[dict[str, Any]]:
        """Readers as the watcher last reported them, with their card kinds."""
        return [{**info, "card_kind": self._cards.get(name)} for name, info in sorted(self._readers.items())]

    # -- waking card waiters ----------------------------------------------------------------

    def notify_change(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        """Block until the next reader/card event or ``timeout`` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            start = self._generation
            while self._generation == start:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

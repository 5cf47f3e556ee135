"""The service-owned PIN page: the hand-over between a waiting card operation
and the page the card holder types on.

A verb that needs a PIN typed at the terminal (national ``iVerifyPIN`` /
``iChangePIN``, or a native request without a PIN) registers a
:class:`PinRequest` and blocks; the PIN page (``/pin/``, served by the
service, open on the customer-facing screen) long-polls for pending
requests, shows its keypad and posts the digits back.  The counter page that
started the verb only ever learns the outcome, never the PIN: the page's
endpoints accept only the service's own origin, and its DOM is out of reach
of other origins (no framing, no CORS).

PINs arrive as a ``text/plain`` body, one PIN per line in the order of the
request's steps (``data/pinpage.toml``: verify ``PIN``; change ``OLD``,
``NEW``, ``NEW AGAIN``), are read into ``bytearray`` buffers and wiped by the
consumer after use; a request that is not answered within the entry timeout
fails with -32, a cancel with -31, differing new PINs with -34 (the request
stays pending: the holder may type again).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from apdu.errors import PinEntryError
from terminal.service._data import load_data
from terminal.service.errors import NotFound
from terminal.service.events import EventHub

__all__ = ["MAX_BODY", "PinKind", "PinPageBroker", "PinRequest", "split_pins", "steps_of", "wipe"]

PinKind = Literal["verify", "change"]
Outcome = Literal["pending", "entered", "cancelled"]
MAX_BODY: int = int(load_data("pinpage")["page"]["max_body_bytes"])
LINE_FEED = 0x0A
CARRIAGE_RETURN = 0x0D


def steps_of(kind: PinKind) -> tuple[str, ...]:
    """The entries a request of ``kind`` asks for, in the order they are posted."""
    steps: dict[str, list[str]] = load_data("pinpage")["steps"]
    return tuple(steps[kind])


def wipe(*buffers: bytearray) -> None:
    """Overwrite PIN buffers with zeros."""
    for buffer in buffers:
        for i in range(len(buffer)):
            buffer[i] = 0


def split_pins(body: bytearray, count: int) -> list[bytearray]:
    """``count`` PINs from a ``text/plain`` body (one per line) as new buffers;
    the body is wiped.  A wrong number of lines is -33 (wrong length)."""
    pins: list[bytearray] = [bytearray()]
    try:
        for byte in body:
            if byte == LINE_FEED:
                pins.append(bytearray())
            elif byte != CARRIAGE_RETURN:
                pins[-1].append(byte)
        while len(pins) > count and not pins[-1]:
            pins.pop()
        if len(pins) != count:
            wipe(*pins)
            raise PinEntryError(f"{count} PIN line(s) expected", kind="length")
        return pins
    finally:
        wipe(body)


@dataclass
class PinRequest:
    """One pending PIN entry (the PINs live only in ``pins`` until consumed)."""

    id: str
    kind: PinKind
    reader: str
    operation: str
    expires: float
    done: threading.Event = field(default_factory=threading.Event)
    pins: list[bytearray] = field(default_factory=list, repr=False)
    outcome: Outcome = "pending"

    def public(self) -> dict[str, Any]:
        """What the PIN page may know: no PIN, no card data."""
        return {
            "id": self.id,
            "kind": self.kind,
            "reader": self.reader,
            "steps": list(steps_of(self.kind)),
            "expires_in": max(0.0, round(self.expires - time.monotonic(), 1)),
        }


class PinPageBroker:
    """Pending PIN requests between card operations and the PIN page."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._requests: dict[str, PinRequest] = {}
        self._lock = threading.Lock()

    def request(self, kind: PinKind, *, reader: str, operation: str, timeout: float) -> list[bytearray]:
        """Block until the PIN page answers; the caller wipes the buffers.
        A change answers ``[old, new]`` (the repeated new PIN is checked and wiped here)."""
        entry = PinRequest(
            id=secrets.token_urlsafe(16),
            kind=kind,
            reader=reader,
            operation=operation,
            expires=time.monotonic() + timeout,
        )
        with self._lock:
            self._requests[entry.id] = entry
        self.hub.publish("pin_entry_requested", operation=operation, reader=reader, kind=kind, page="/pin/")
        try:
            entry.done.wait(timeout)
        finally:
            with self._lock:
                self._requests.pop(entry.id, None)
                outcome = entry.outcome
                pins, entry.pins = entry.pins, []
        self.hub.publish("pin_entry_finished", operation=operation, reader=reader, outcome=outcome)
        if outcome == "entered":
            return pins
        wipe(*pins)
        if outcome == "cancelled":
            raise PinEntryError("PIN entry cancelled on the PIN page", kind="cancelled")
        raise PinEntryError("PIN entry on the PIN page timed out", kind="timeout")

    def pending(self) -> list[dict[str, Any]]:
        """The open requests, oldest first, as the page may see them."""
        now = time.monotonic()
        with self._lock:
            return [r.public() for r in self._requests.values() if r.outcome == "pending" and r.expires > now]

    def reader_of(self, request_id: str) -> str:
        """The reader of a pending request (NotFound when there is none)."""
        return self._take(request_id).reader

    def _take(self, request_id: str) -> PinRequest:
        with self._lock:
            entry = self._requests.get(request_id)
            if entry is None or entry.outcome != "pending" or entry.expires <= time.monotonic():
                raise NotFound("no such pending PIN entry")
            return entry

    def submit(self, request_id: str, body: bytearray) -> None:
        """The page's answer (``text/plain``, one PIN per line); wipes ``body``."""
        try:
            entry = self._take(request_id)
        except NotFound:
            wipe(body)
            raise
        pins = split_pins(body, len(steps_of(entry.kind)))
        if entry.kind == "change":
            same = hmac.compare_digest(pins[1], pins[2])
            wipe(pins.pop())
            if not same:
                wipe(*pins)
                raise PinEntryError("the two new PIN entries differ", kind="mismatch")
        with self._lock:
            if entry.outcome != "pending" or self._requests.get(request_id) is not entry:
                wipe(*pins)
                raise NotFound("no such pending PIN entry")
            entry.pins = pins
            entry.outcome = "entered"
        entry.done.set()

    def cancel(self, request_id: str) -> None:
        """The holder cancelled on the page: the waiting operation fails with -31."""
        entry = self._take(request_id)
        with self._lock:
            if entry.outcome != "pending":
                raise NotFound("no such pending PIN entry")
            entry.outcome = "cancelled"
        entry.done.set()

"""The service-owned PIN page: the hand-over between a waiting card operation
and the page the card holder types on.

A verb that needs a PIN typed at the terminal (national ``iVerifyPIN`` /
``iChangePIN``, or a native request without a PIN) registers a
:class:`PinRequest` and blocks; the PIN page (``/pin/``, served by the
service, open on the customer-facing screen) long-polls for pending
requests, shows its keypad and posts the digits back.  The counter page that
started the verb only ever learns the outcome, never the PIN: the page's
endpoints accept only the service's own origin, and its DOM is out of reach
of other origins.

PINs arrive as a ``text/plain`` body (one PIN per line: verify ``PIN``;
change ``OLD\\nNEW\\nNEW AGAIN``), are read into ``bytearray`` buffers and
wiped by the consumer after use; a request that is not answered within the
entry timeout fails with -32, a cancel with -31, differing new PINs with -34.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from apdu.errors import PinEntryError
from terminal.service.errors import NotFound
from terminal.service.events import EventHub

__all__ = ["PinPageBroker", "PinRequest", "split_pins", "wipe"]

PinKind = Literal["verify", "change"]
MAX_BODY = 256
PROMPTS: dict[str, tuple[str, ...]] = {
    "verify": ("请输入服务密码",),
    "change": ("请输入原服务密码", "请输入新服务密码", "请再次输入新服务密码"),
}


def wipe(*buffers: bytearray) -> None:
    """Overwrite PIN buffers with zeros."""
    for buffer in buffers:
        for i in range(len(buffer)):
            buffer[i] = 0


def split_pins(body: bytearray, count: int) -> list[bytearray]:
    """``count`` PINs from a ``text/plain`` body (one per line) as new buffers;
    the body is wiped.  A wrong number of lines is -33 (wrong length)."""
    try:
        pins: list[bytearray] = [bytearray()]
        for byte in body:
            if byte == 0x0A:
                pins.append(bytearray())
            elif byte != 0x0D:
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
    pins: list[bytearray] = field(default_factory=list)
    outcome: Literal["pending", "entered", "cancelled"] = "pending"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "reader": self.reader,
            "prompts": list(PROMPTS[self.kind]),
            "expires_in": max(0.0, round(self.expires - time.monotonic(), 1)),
        }


class PinPageBroker:
    """Pending PIN requests between card operations and the PIN page."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._requests: dict[str, PinRequest] = {}
        self._lock = threading.Lock()

    def request(self, kind: PinKind, *, reader: str, operation: str, timeout: float) -> list[bytearray]:
        """Block until the PIN page answers; the caller wipes the buffers."""
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
        self.hub.publish("pin_entry_finished", operation=operation, reader=reader, outcome=outcome)
        if outcome == "entered":
            return entry.pins
        wipe(*entry.pins)
        if outcome == "cancelled":
            raise PinEntryError("PIN entry cancelled on the PIN page", kind="cancelled")
        raise PinEntryError("PIN entry on the PIN page timed out", kind="timeout")

    def pending(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [r.public() for r in self._requests.values() if r.outcome == "pending" and r.expires > now]

    def _take(self, request_id: str) -> PinRequest:
        with self._lock:
            entry = self._requests.get(request_id)
            if entry is None or entry.outcome != "pending":
                raise NotFound("no such pending PIN entry")
            return entry

    def submit(self, request_id: str, body: bytearray) -> None:
        """The page's answer (``text/plain``, one PIN per line); wipes ``body``."""
        try:
            entry = self._take(request_id)
        except NotFound:
            wipe(body)
            raise
        count = len(PROMPTS[entry.kind])
        pins = split_pins(body, count)
        if entry.kind == "change" and not _same(pins[1], pins[2]):
            wipe(*pins)
            raise PinEntryError("the two new PIN entries differ", kind="mismatch")
        if entry.kind == "change":
            wipe(pins.pop())
        with self._lock:
            if entry.outcome != "pending":
                wipe(*pins)
                raise NotFound("no such pending PIN entry")
            entry.pins = pins
            entry.outcome = "entered"
        entry.done.set()

    def cancel(self, request_id: str) -> None:
        entry = self._take(request_id)
        with self._lock:
            entry.outcome = "cancelled"
        entry.done.set()


def _same(a: bytearray, b: bytearray) -> bool:
    return hmac.compare_digest(a, b)

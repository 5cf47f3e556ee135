"""The requests of the service section, as counter software sends them.

:func:`http_call` posts to the native API on a keep-alive ``httpx`` client;
:func:`national_call` sends a national function on an open WebSocket.  A
call whose answer is wrong in content (a success without the fields it
must carry) always raises :class:`~terminal.bench.errors.BenchCheckError`.
An *error answer* (HTTP error status, national ``success`` other than 0)
raises too, unless a :class:`Failures` tally is given: the throughput runs
count such answers (by error id) instead of discarding the whole run, and
report them.  Error answers name an error id and a code, never card data.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection

from terminal.bench.errors import BenchCheckError

__all__ = ["Call", "Failures", "http_call", "national_call"]

Call = Callable[[], None]


class Failures:
    """Error answers counted by kind (thread-safe)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def http_call(client: httpx.Client, path: str, reader: str, failures: Failures | None = None) -> Call:
    """``POST path {"reader": reader}``; a success must carry ``card_id``."""

    def call() -> None:
        try:
            response = client.post(path, json={"reader": reader})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BenchCheckError(f"HTTP {path} failed: {type(exc).__name__}") from exc
        if response.status_code == 200:
            if "card_id" not in body:
                raise BenchCheckError(f"HTTP {path} answered 200 without card_id")
            return
        kind = f"{response.status_code} {body.get('error')} ({body.get('national_code')})"
        if failures is None:
            raise BenchCheckError(f"HTTP {path} answered status {kind}")
        failures.add(kind)

    return call


def national_call(
    ws: ClientConnection, function: str, itype: int, timeout: float, failures: Failures | None = None
) -> Call:
    """``{"function": function, "iType": itype}``; a success must carry the SSN (field 2)."""
    message = json.dumps({"function": function, "iType": itype})

    def call() -> None:
        try:
            ws.send(message)
            answer = json.loads(ws.recv(timeout=timeout))
        except (WebSocketException, TimeoutError, ValueError) as exc:
            raise BenchCheckError(f"national {function} failed: {type(exc).__name__}") from exc
        success = answer.get("success")
        if success == 0:
            fields = str(answer.get("pOutInfo", "")).split("|")
            # the SSN is empty unless the PSAM's external authentication worked
            if len(fields) < 5 or not fields[1]:
                raise BenchCheckError(f"national {function} answered 0 without the SSN")
            return
        kind = f"success={success} ({answer.get('message')})"
        if failures is None:
            raise BenchCheckError(f"national {function} answered {kind}")
        failures.add(kind)

    return call

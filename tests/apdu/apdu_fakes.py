"""Fake transports and cards for the apdu tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from apdu.errors import SscardError
from apdu.transport import ProtocolName

Step = tuple[str, "str | SscardError"]


class ScriptedTransport:
    """Checks every transmitted APDU against a script and answers from it.

    Script items: ``(expected command hex, response hex or an exception)``."""

    def __init__(self, script: Sequence[Step], *, protocol: ProtocolName = "T0") -> None:
        self.script = list(script)
        self.sent: list[bytes] = []
        self._protocol: ProtocolName = protocol
        self.transactions = 0
        self.connected = True

    @property
    def reader(self) -> str:
        return "scripted"

    @property
    def atr(self) -> bytes:
        return bytes.fromhex("3B6A0000424A5353433300039000")

    @property
    def protocol(self) -> ProtocolName:
        return self._protocol

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def reconnect(self, reset: bool = False) -> None:
        self.connected = True

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        assert self.script, f"unexpected APDU {apdu.hex().upper()}"
        expected, answer = self.script.pop(0)
        assert apdu.hex().upper() == expected.replace(" ", "").upper(), (
            f"sent {apdu.hex().upper()}, script expected {expected}"
        )
        if isinstance(answer, SscardError):
            raise answer
        return bytes.fromhex(answer.replace(" ", ""))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions += 1
        yield

    def done(self) -> bool:
        return not self.script


class FunctionCard:
    """A card whose ``process`` is a function (for the in-process transport)."""

    def __init__(
        self,
        process: Callable[[bytes], bytes],
        atr: str = "3B6A0000424A5353433300039000",
    ) -> None:
        self._process = process
        self._atr = bytes.fromhex(atr)
        self.powered = False
        self.resets = 0

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        self.powered = True

    def power_off(self) -> None:
        self.powered = False

    def reset(self) -> None:
        self.resets += 1

    def process(self, apdu: bytes) -> bytes:
        return self._process(apdu)

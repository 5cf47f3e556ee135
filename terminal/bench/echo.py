"""The loopback floor: a virtual card that answers every APDU with ``9000``.

It implements the ``emulator.vpcd.VirtualCard`` protocol and is attached with
our ``VpcdLink``, so a round trip to it is pcscd + vpcd + our socket handling
with no card logic at all: the least any virtual card can take.
"""

from __future__ import annotations

from terminal.bench._data import load_data

__all__ = ["EchoCard"]


class EchoCard:
    """Answers ``9000`` to everything; counts what it was sent."""

    def __init__(self) -> None:
        row = load_data("cards")["echo"]
        self._atr = bytes.fromhex(row["atr"])
        self._answer = bytes.fromhex(row["answer"])
        self.commands = 0

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        return None

    def power_off(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def process(self, apdu: bytes) -> bytes:
        self.commands += 1
        return self._answer

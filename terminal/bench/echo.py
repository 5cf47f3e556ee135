"""The loopback floor: a virtual card that answers every APDU with ``9000``.

It is a card without any logic: :class:`emulator.foreign.ForeignCard` (the
project's card that is not a social security card, with its stateless
``VirtualCard`` power and reset handling) with its own ATR and one answer to
everything.  Attached with our ``VpcdLink``, a round trip to it is pcscd +
vpcd + our socket handling with no card logic at all: the least any virtual
card can take.
"""

from __future__ import annotations

from emulator.foreign import ForeignCard
from terminal.bench._data import load_data

__all__ = ["EchoCard"]


class EchoCard(ForeignCard):
    """Answers ``9000`` to everything (ATR and answer from ``data/cards.toml``); counts commands."""

    def __init__(self) -> None:
        row = load_data("cards")["echo"]
        super().__init__(bytes.fromhex(row["atr"]))
        self._answer = bytes.fromhex(row["answer"])
        self.commands = 0

    def process(self, apdu: bytes) -> bytes:
        self.commands += 1
        return self._answer

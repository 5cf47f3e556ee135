"""PC/SC helpers of the reliability tests: this area's vpcd slots, inserting
a card and waiting until the reader sees it, and card wrappers that
misbehave on purpose (a mute card, a card pulled at a given APDU)."""

from __future__ import annotations

import threading

from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card
from emulator.vpcd import CardWrapper as BaseWrapper
from emulator.vpcd import Tear, VirtualCard

CARD_SLOT = 14
PSAM_SLOT = 15


class CardWrapper(BaseWrapper):
    """Counts the commands it passes to ``card``."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.count = 0

    def process(self, apdu: bytes) -> bytes:
        self.count += 1
        return self.card.process(apdu)


class MuteCard(CardWrapper):
    """Goes silent when armed: the next command gets no answer until
    :meth:`release` (then it is answered late), as a card that stopped
    talking in the field.  vpcd and pcscd wait for it without a limit."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.armed = False
        self.silent = threading.Event()
        self._released = threading.Event()

    def arm(self) -> None:
        self.armed = True

    def release(self) -> None:
        self._released.set()

    def process(self, apdu: bytes) -> bytes:
        if self.armed:
            self.armed = False
            self.silent.set()
            self._released.wait(60.0)
        return super().process(apdu)


class PullAt(CardWrapper):
    """Pulls the card out at command number ``index`` (1-based, counted from
    :meth:`arm`): executed first (``execute=True``, the card commits before
    answering) or not at all; vpcd then sees the link close.  The base of the
    tearing campaign (every APDU index of a writing flow, both variants)."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.index: int | None = None
        self.execute = False
        self.torn_apdu: bytes | None = None

    def arm(self, index: int, *, execute: bool = False) -> None:
        self.count = 0
        self.index, self.execute, self.torn_apdu = index, execute, None

    def process(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.index is not None and self.count == self.index:
            self.index = None
            self.torn_apdu = bytes(apdu)
            if self.execute:
                self.card.process(apdu)
            raise Tear()
        return self.card.process(apdu)

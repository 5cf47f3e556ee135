"""Helpers of the terminal tests: wrapper cards, sessions, vpcd slots."""

from __future__ import annotations

from typing import Any

from apdu.errors import CardRemovedError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_ca, demo_card_image, demo_psam_image
from card_model.image import CardImage
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.foreign import FOREIGN_ATR as FOREIGN_ATR
from emulator.foreign import ForeignCard as ForeignCard
from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card
from emulator.psam import PsamCard
from emulator.vpcd import CardWrapper, Tear, VirtualCard
from terminal.journal_hook import JournalHook, MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.session import CardSession


class TearingCard(CardWrapper):
    """Wraps a card; when armed, the next command with INS ``ins`` tears the card
    out: executed first (``execute=True``, the card commits before answering) or
    not at all.  In process the transport loses the card and CardRemovedError is
    raised; over vpcd :class:`emulator.vpcd.Tear` closes the link."""

    def __init__(self, card: VirtualCard, *, transport: InProcessTransport | None = None) -> None:
        super().__init__(card)
        self.transport = transport
        self.ins: int | None = None
        self.execute = True
        self.torn = False

    def arm(self, ins: int, *, execute: bool = True) -> None:
        self.ins, self.execute, self.torn = ins, execute, False

    def process(self, apdu: bytes) -> bytes:
        if self.ins is not None and len(apdu) > 1 and apdu[1] == self.ins:
            self.ins = None
            if self.execute:
                self.card.process(apdu)
            self.torn = True
            if self.transport is not None:
                self.transport.remove()
                raise CardRemovedError("in-process card torn out")
            raise Tear()
        return self.card.process(apdu)


def anchors() -> list[Any]:
    return [demo_ca().certificate]


def card_os(
    generation: int = 3,
    *,
    life_cycle: LifeCycle | None = None,
    holder: str | None = None,
    interface: str = "contact",
    image: CardImage | None = None,
) -> CardOS:
    img = image if image is not None else demo_card_image(generation, life_cycle=life_cycle, holder=holder)
    return CardOS(img, interface=interface)  # type: ignore[arg-type]


def psam_source(image: Any = None) -> PsamKeySource:
    return PsamKeySource(
        InProcessTransport(
            PsamCard(image if image is not None else demo_psam_image()), reader="In-process PSAM"
        )
    )


def inprocess_session(
    card: VirtualCard,
    *,
    key_source: KeySource | None = None,
    journal: JournalHook | None = None,
    protocol: str = "T0",
    reader: str = "In-process card",
    tearing: bool = False,
) -> tuple[CardSession, InProcessTransport, TearingCard | None]:
    transport = InProcessTransport(reader=reader, protocol=protocol)  # type: ignore[arg-type]
    wrapper = None
    if tearing:
        wrapper = TearingCard(card, transport=transport)
        transport.insert(wrapper)
    else:
        transport.insert(card)
    session = CardSession(
        transport,
        key_source=key_source,
        journal=journal if journal is not None else MemoryJournal(),
        trust_anchors=anchors(),
    )
    session.connect()
    return session, transport, wrapper

"""Helpers of the wallet tests: active demo cards, raw purse APDUs with their
cryptograms computed from the demo key set, in-process sessions, and a card
wrapper that tears at the n-th APDU."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from apdu.errors import CardRemovedError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_card_image, demo_key_set, demo_psam_image
from card_model.image import CardImage
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.purse import (
    TYPE_LOAD,
    TYPE_PURCHASE,
    load_mac2_data,
    load_seed,
    purchase_mac1_data,
    purchase_seed,
    session_mac,
)
from emulator.card_os import CardOS
from emulator.presence import wait_for_card
from emulator.psam import PsamCard
from emulator.vpcd import CardWrapper, Tear, VirtualCard
from terminal.journal_hook import JournalHook, MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.session import CardSession

PURSE_NAME = bytes.fromhex("D1560000055055525345")
TERMINAL = bytes.fromhex("110102000001")
DATE = bytes.fromhex("20260301")
TIME = bytes.fromhex("081500")
NOW = dt.datetime(2026, 3, 1, 8, 15, 0)
SEQUENCE = bytes.fromhex("00000007")


def active_image(generation: int = 3, *, life_cycle: LifeCycle = LifeCycle.ACTIVE) -> CardImage:
    return demo_card_image(generation, life_cycle=life_cycle)


def active_card(
    generation: int = 3, *, interface: str = "contact", life_cycle: LifeCycle = LifeCycle.ACTIVE
) -> CardOS:
    card = CardOS(active_image(generation, life_cycle=life_cycle), interface=interface)  # type: ignore[arg-type]
    card.power_on()
    return card


def send(card: CardOS, apdu: str | bytes) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    answer = card.process(raw)
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def sw(card: CardOS, apdu: str | bytes) -> int:
    return send(card, apdu)[1]


def apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    out = bytes((cla, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + data
    if le is not None:
        out += bytes((le & 0xFF,))
    return out


def select_purse(card: CardOS) -> bytes:
    data, status = send(card, apdu(0x00, 0xA4, 0x04, 0x00, PURSE_NAME, 0))
    assert status == 0x9000, hex(status)
    return data


def card_key(card: CardOS, role: KeyRole) -> bytes:
    algorithm = Algorithm.SM4 if card.profile.algorithm is Algorithm.SM4 else Algorithm.TDES
    return demo_key_set().card_key(algorithm, role, card.image.factor)


def balance(card: CardOS) -> int:
    data, status = send(card, "805C000204")
    assert status == 0x9000, hex(status)
    return int.from_bytes(data, "big")


def init_load(
    card: CardOS, amount: int, *, key_index: int = 1, terminal: bytes = TERMINAL
) -> tuple[bytes, int]:
    return send(
        card, apdu(0x80, 0x50, 0x00, 0x02, bytes((key_index,)) + amount.to_bytes(4, "big") + terminal, 0x10)
    )


def init_purchase(card: CardOS, amount: int, *, terminal: bytes = TERMINAL) -> tuple[bytes, int]:
    return send(card, apdu(0x80, 0x50, 0x01, 0x02, b"\x01" + amount.to_bytes(4, "big") + terminal, 0x0F))


@dataclass(frozen=True)
class LoadInit:
    balance: int
    counter: int
    key_version: int
    algorithm_id: int
    random: bytes
    mac1: bytes

    @classmethod
    def parse(cls, data: bytes) -> LoadInit:
        assert len(data) == 16
        return cls(
            int.from_bytes(data[:4], "big"),
            int.from_bytes(data[4:6], "big"),
            data[6],
            data[7],
            data[8:12],
            data[12:16],
        )


def credit_apdu(card: CardOS, init: LoadInit, amount: int, *, wrong: bool = False) -> bytes:
    key = card_key(card, KeyRole.LK)
    mac2 = session_mac(
        key,
        card.profile.algorithm,
        load_seed(init.random, init.counter),
        load_mac2_data(amount, TYPE_LOAD, TERMINAL, DATE, TIME),
    )
    if wrong:
        mac2 = bytes(b ^ 0xFF for b in mac2)
    return apdu(0x80, 0x52, 0x00, 0x00, DATE + TIME + mac2, 0x04)


def do_load(card: CardOS, amount: int) -> bytes:
    """A complete load (purse selected); returns the TAC."""
    data, status = init_load(card, amount)
    assert status == 0x9000, hex(status)
    tac, status = send(card, credit_apdu(card, LoadInit.parse(data), amount))
    assert status == 0x9000, hex(status)
    return tac


def debit_apdu(card: CardOS, init_data: bytes, amount: int, *, wrong: bool = False) -> tuple[bytes, bytes]:
    """DEBIT FOR PURCHASE for an INITIALIZE answer; also returns the session seed."""
    random, counter = init_data[11:15], int.from_bytes(init_data[4:6], "big")
    seed = purchase_seed(random, counter, SEQUENCE)
    mac1 = session_mac(
        card_key(card, KeyRole.PK),
        card.profile.algorithm,
        seed,
        purchase_mac1_data(amount, TYPE_PURCHASE, TERMINAL, DATE, TIME),
    )
    if wrong:
        mac1 = bytes(b ^ 0x01 for b in mac1)
    return apdu(0x80, 0x54, 0x01, 0x00, SEQUENCE + DATE + TIME + mac1, 0x08), seed


def do_purchase(card: CardOS, amount: int) -> bytes:
    data, status = init_purchase(card, amount)
    assert status == 0x9000, hex(status)
    command, _ = debit_apdu(card, data, amount)
    answer, status = send(card, command)
    assert status == 0x9000, hex(status)
    return answer


def psam_source() -> PsamKeySource:
    return PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="In-process PSAM"))


def session_for(
    card: VirtualCard,
    *,
    key_source: KeySource | None = None,
    journal: JournalHook | None = None,
    protocol: str = "T0",
) -> tuple[CardSession, InProcessTransport]:
    transport = InProcessTransport(reader="In-process card", protocol=protocol)  # type: ignore[arg-type]
    transport.insert(card)
    session = CardSession(
        transport, key_source=key_source, journal=journal if journal is not None else MemoryJournal()
    )
    session.connect()
    return session, transport


class NthTear(CardWrapper):
    """Wraps a card; when armed, the n-th APDU from now tears the card out,
    executed first (``after``) or not (``before``).  In process the transport
    loses the card (CardRemovedError); over vpcd :class:`Tear` closes the link."""

    def __init__(self, card: VirtualCard, transport: InProcessTransport | None = None) -> None:
        super().__init__(card)
        self.transport = transport
        self.countdown = 0
        self.after = False
        self.count = 0
        self.fired: bytes | None = None

    def arm(self, nth: int, *, after: bool) -> None:
        self.countdown, self.after, self.fired = nth, after, None

    def process(self, apdu_bytes: bytes) -> bytes:
        self.count += 1
        if self.countdown:
            self.countdown -= 1
            if not self.countdown:
                self.fired = bytes(apdu_bytes[:2])
                if self.after:
                    self.card.process(apdu_bytes)
                if self.transport is not None:
                    self.transport.remove()
                    raise CardRemovedError("in-process card torn out")
                raise Tear()
        return self.card.process(apdu_bytes)


def apdu_count(flow: Callable[[], object], wrapper: NthTear) -> int:
    start = wrapper.count
    flow()
    return wrapper.count - start


class Slot:
    """A vpcd slot of the wallet area: insert a card, wait until PC/SC sees it,
    remove it (waiting until it is gone); re-insert after a tear."""

    def __init__(self, slot: int, reader: str) -> None:
        from emulator.vpcd import VpcdLink

        self.slot = slot
        self.reader = reader
        self._link_type = VpcdLink
        self.link: VpcdLink | None = None

    def insert(self, card: VirtualCard) -> None:
        if self.link is not None:
            self.link.remove()
            wait_for_card(self.reader, False)
        self.link = self._link_type(card, self.slot)
        self.link.insert()
        wait_for_card(self.reader, True)

    def reinsert(self) -> None:
        assert self.link is not None
        wait_for_card(self.reader, False)
        self.link.remove()
        self.link.insert()
        wait_for_card(self.reader, True)

    def remove(self) -> None:
        if self.link is not None:
            self.link.remove()
            self.link = None
        wait_for_card(self.reader, False)

"""PC/SC helpers of the issuance tests: reader state polling, cards in vpcd slots.

Slots of this area (tests/conftest.py SLOT_RANGES["issuance"]): 0 the card
under issuance, 1 the PSAM, 2 a second card (the old card of a replacement).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from apdu.pcsc import reader_states
from emulator.vpcd import VirtualCard, VpcdLink

CARD_SLOT = 0
PSAM_SLOT = 1
OLD_CARD_SLOT = 2
AREA_SLOTS = (CARD_SLOT, PSAM_SLOT, OLD_CARD_SLOT)


def wait_for_card(reader: str, present: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if state.present == present and (not present or state.atr):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{reader}: card present={state.present}, expected {present}")
        time.sleep(0.01)


@contextmanager
def inserted(card: VirtualCard, slot: int, reader: str) -> Iterator[VpcdLink]:
    """The card in vpcd slot ``slot`` for the block; removed (and seen gone) at its end."""
    assert slot in AREA_SLOTS
    link = VpcdLink(card, slot)
    link.insert()
    try:
        wait_for_card(reader, True)
        yield link
    finally:
        link.remove()
        wait_for_card(reader, False)

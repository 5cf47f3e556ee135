"""Fixtures of the terminal tests.

vpcd slots of this area (tests/conftest.py): 4 the card under test, 5 the
PSAM, 6 a second card (contactless / foreign), 7 the watcher tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from psam_slot import demo_psam_source
from terminal_cards import inserted

from emulator.stack import PcscStack
from emulator.vpcd import VirtualCard, VpcdLink
from terminal.keysource import PsamKeySource

CARD_SLOT = 4
PSAM_SLOT = 5
SECOND_SLOT = 6
WATCH_SLOT = 7


@pytest.fixture(scope="session")
def psam_in_slot(pcsc_stack: PcscStack) -> Iterator[PsamKeySource]:
    """The demo PSAM in vpcd slot 5, opened as a key source over PC/SC."""
    with demo_psam_source(pcsc_stack, PSAM_SLOT) as source:
        yield source


@pytest.fixture
def card_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(CARD_SLOT)


@pytest.fixture
def insert(pcsc_stack: PcscStack) -> Callable[..., AbstractContextManager[VpcdLink]]:
    """``with insert(card, slot=4) as link:`` puts a card into a slot of this area."""

    def put(card: VirtualCard, slot: int = CARD_SLOT) -> AbstractContextManager[VpcdLink]:
        assert slot in (CARD_SLOT, SECOND_SLOT, WATCH_SLOT)
        return inserted(card, slot, pcsc_stack.reader_for_slot(slot))

    return put

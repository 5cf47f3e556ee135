"""Fixtures of the emulator end-to-end area: a card host whose cards are all
pulled (and seen gone by pcscd) when the test ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_pcsc_helpers import SLOTS, wait_reader

from emulator.runner import CardHost
from emulator.stack import PcscStack


@pytest.fixture
def host(pcsc_stack: PcscStack) -> Iterator[CardHost]:
    with CardHost() as card_host:
        yield card_host
        used = list(card_host.slots)
        assert all(slot in SLOTS for slot in used), f"slots {used} outside this area's {SLOTS}"
    for slot in used:
        wait_reader(pcsc_stack.reader_for_slot(slot), None)

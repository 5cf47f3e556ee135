"""Fixtures of the issuance tests (slots: issuance_pcsc.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from issuance_pcsc import CARD_SLOT, PSAM_SLOT, inserted
from psam_slot import demo_psam_source

from emulator.stack import PcscStack
from emulator.vpcd import VirtualCard, VpcdLink
from terminal.keysource import PsamKeySource
from terminal.registry import Journal, Registry, open_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[Registry, Journal]]:
    opened = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield opened
    finally:
        opened[0].close()


@pytest.fixture
def insert(pcsc_stack: PcscStack) -> Callable[..., AbstractContextManager[VpcdLink]]:
    """``with insert(card, slot=0) as link:`` puts a card into a slot of this area."""

    def put(card: VirtualCard, slot: int = CARD_SLOT) -> AbstractContextManager[VpcdLink]:
        return inserted(card, slot, pcsc_stack.reader_for_slot(slot))

    return put


@pytest.fixture(scope="module")
def psam_in_slot(pcsc_stack: PcscStack) -> Iterator[PsamKeySource]:
    """The demo PSAM in slot 1, opened as a key source over PC/SC."""
    with demo_psam_source(pcsc_stack, PSAM_SLOT) as source:
        yield source

"""Fixtures of the reliability tests (issue 11).

vpcd slots of this area: 14 the card under test, 15 its PSAM (both removed
when each test ends).  Slots 12/13 belong to the service tests, whose PSAM
may stay in slot 13 for the whole CI session; tests/conftest.py lists the
ranges.  Infrastructure tests that stop or kill pcscd use a private pcscd
(rel_pcscd.py), never the shared one.

Hypothesis: every fuzz target takes its settings from rel_fuzz.FUZZ
(bounded "ci" profile by default, SSCARD_FUZZ_PROFILE=long for the long
mode; docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from rel_pcsc import CARD_SLOT, PSAM_SLOT, inserted

from emulator.stack import PcscStack
from emulator.vpcd import VirtualCard, VpcdLink

Insert = Callable[..., AbstractContextManager[VpcdLink]]


@pytest.fixture
def card_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(CARD_SLOT)


@pytest.fixture
def psam_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(PSAM_SLOT)


@pytest.fixture
def insert(pcsc_stack: PcscStack) -> Iterator[Insert]:
    """``with insert(card, slot=14) as link:`` puts a card into a slot of this area."""

    def put(card: VirtualCard, slot: int = CARD_SLOT) -> AbstractContextManager[VpcdLink]:
        assert slot in (CARD_SLOT, PSAM_SLOT)
        return inserted(card, slot, pcsc_stack.reader_for_slot(slot))

    yield put

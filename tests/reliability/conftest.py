"""Fixtures of the reliability tests (issue 11).

vpcd slots of this area: 14 the card under test, 15 its PSAM (both removed
when each test ends).  Slots 12/13 belong to the service tests, whose PSAM
may stay in slot 13 for the whole CI session; tests/conftest.py lists the
ranges.  Infrastructure tests that stop or kill pcscd use a private pcscd
(rel_pcscd.py), never the shared one.  The tearing campaign through PC/SC
and the bad input table's CLI use slots 10 (card) and 11 (PSAM) with their
own module fixtures (test_rel_tear_pcsc.py, test_rel_bad_inputs.py).

Hypothesis: every fuzz target takes its settings from rel_fuzz.FUZZ
(bounded "ci" profile by default, SSCARD_FUZZ_PROFILE=long for the long
mode; docs/reliability.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

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


# -- tearing campaign: tear points covered (printed in the terminal summary) -----------------

TEAR_POINTS: pytest.StashKey[Counter[str]] = pytest.StashKey()


@pytest.fixture(scope="session")
def tear_points(pytestconfig: pytest.Config) -> Counter[str]:
    """Tear points covered, by flow; the tearing tests add theirs."""
    return pytestconfig.stash.setdefault(TEAR_POINTS, Counter())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    points = config.stash.get(TEAR_POINTS, None)
    if points:
        terminalreporter.write_line(
            f"tearing campaign: {sum(points.values())} tear points over {len(points)} flows"
        )

"""A tear at every APDU of an instant issuance (in process, the emulator's
fault plan): before the card executes it, and — for every command that
changes the card — after.  Each tear is followed by a new session that finds
a consistent card (recognisably unfinished: blank with its progress
readable, or finished and complete) and resumes the issuance to the end.

The sweep counts the APDUs of a clean issuance first, so it follows the
flow when steps are added.  Full read / authenticity / PIN checks run on
every card that was finished when torn and on a sample of the others (every
card gets the state, registry and journal checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from issuance_tear_cases import FULL_CHECK_EVERY, STATE_CHANGING, clean_run, sweep_case

from card_model.demo import demo_key_set
from terminal.keysource import DevKeyFileKeySource, DevKeysWarning
from terminal.registry import Journal, Registry

Opened = tuple[Registry, Journal]


@pytest.fixture(scope="module")
def keys() -> Iterator[DevKeyFileKeySource]:
    with pytest.warns(DevKeysWarning):
        source = DevKeyFileKeySource(demo_key_set())
    yield source


def test_tear_at_every_apdu_of_issuance(registry: Opened, keys: DevKeyFileKeySource) -> None:
    reg, _ = registry
    apdus = clean_run(reg, keys)
    assert len(apdus) > 80
    cases = [("tear_before", i) for i in range(1, len(apdus) + 1)]
    cases += [("tear_after", i) for i, key in enumerate(apdus, start=1) if key in STATE_CHANGING]
    for case, (kind, index) in enumerate(cases):
        sweep_case(reg, keys, kind, index, 10000 + case, full=case % FULL_CHECK_EVERY == 0)

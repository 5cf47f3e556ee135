"""Tearing campaign, issuance: the issuance area's own sweep
(tests/issuance/test_issuance_tear.py) tears before every APDU of an instant
issuance and after every command that changes the card.  This completes it
to "before and after every APDU": a tear after each of the other (reading)
APDUs, through the same case function (``sweep_case`` in
tests/issuance/issuance_tear_cases.py: consistent card, journal steps
settled, the issuance resumed to the end and registered)."""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from card_model.demo import demo_key_set
from terminal.keysource import DevKeyFileKeySource, DevKeysWarning
from terminal.registry import Journal, Registry, open_registry

ISSUANCE_TESTS = Path(__file__).resolve().parents[1] / "issuance"
if str(ISSUANCE_TESTS) not in sys.path:
    sys.path.insert(0, str(ISSUANCE_TESTS))

import issuance_tear_cases as issuance_sweep  # noqa: E402  (the issuance area's sweep, reused)

FIRST_CARD_NUMBER = 60000


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[Registry, Journal]]:
    opened = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield opened
    finally:
        opened[0].close()


@pytest.fixture(scope="module")
def keys() -> DevKeyFileKeySource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevKeysWarning)
        return DevKeyFileKeySource(demo_key_set())


def test_tear_after_every_reading_apdu_of_issuance(
    registry: tuple[Registry, Journal], keys: DevKeyFileKeySource, tear_points: Counter[str]
) -> None:
    reg, _ = registry
    apdus = issuance_sweep.clean_run(reg, keys)
    changing = [key in issuance_sweep.STATE_CHANGING for key in apdus]
    complement = [i for i, change in enumerate(changing, start=1) if not change]
    assert complement and len(complement) < len(apdus)
    for case, index in enumerate(complement):
        issuance_sweep.sweep_case(
            reg,
            keys,
            "tear_after",
            index,
            FIRST_CARD_NUMBER + case,
            full=case % issuance_sweep.FULL_CHECK_EVERY == 0,
        )
    # counted here: the points this test runs (the issuance area's sweep runs the others)
    tear_points["gen3 issuance (after reads)"] += len(complement)
    print(
        f"tear points issuance: {len(apdus)} APDUs, {2 * len(apdus)} points "
        f"({len(apdus) + sum(changing)} in tests/issuance, {len(complement)} here)"
    )

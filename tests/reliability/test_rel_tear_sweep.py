"""Tearing campaign, in process: every writing flow torn at every APDU index,
before and after the card executes it (rel_tear.py says what each case
checks).  Issuance has its own sweep of the same kind
(tests/issuance/test_issuance_tear.py, counted in docs/reliability.md); the
PC/SC subset is test_rel_tear_pcsc.py."""

from __future__ import annotations

from collections import Counter

import pytest
from rel_tear import KINDS, CleanRun, clean_run, psam_source, sweep
from rel_tear_flows import flow_ids, tear_flows

from terminal.keysource import PsamKeySource

GENERATIONS = (3, 2, 1)


@pytest.fixture(scope="module")
def key_source() -> PsamKeySource:
    return psam_source()


CASES = [(generation, name) for generation in GENERATIONS for name in flow_ids(generation)]


@pytest.mark.parametrize(("generation", "name"), CASES, ids=[f"gen{g}-{n}" for g, n in CASES])
def test_tear_at_every_apdu(
    generation: int, name: str, key_source: PsamKeySource, tear_points: Counter[str]
) -> None:
    (flow,) = [f for f in tear_flows(generation) if f.name == name]
    run: CleanRun = clean_run(flow, key_source)
    assert run.apdus >= 1 and run.old != run.new, f"{name}: the clean run changed nothing"
    distinct = {str(b) for b in run.boundaries}
    assert len(distinct) == 2 + flow.partial_states, f"{name}: {len(distinct)} distinct card states"
    outcomes = list(sweep(run, key_source))
    assert len(outcomes) == run.apdus * len(KINDS)
    seen = Counter(o.card for o in outcomes)
    assert seen["old"] and seen["new"], f"{name}: the sweep never left the old or the new state {seen}"
    assert any(o.entry_state == "torn" for o in outcomes), f"{name}: no tear hit the write"
    tear_points[f"gen{generation} {name}"] += len(outcomes)
    print(
        f"tear points gen{generation} {name}: {run.apdus} APDUs, {len(outcomes)} points, cards {dict(seen)}"
    )

"""Fixtures of the bench tests: one smoke run of every section, shared by the module tests.

The bench uses vpcd slots 14-15 only (tests/conftest.py gives them to the
apdu live tests and the bench; pytest runs the areas one after another).
With two slots the APDU section measures in two groups (floor + card OS,
then card OS + stock VirtualICC; recorded in the section's notes), the
flows use one slot for the card and one for the PSAM, and the service section
runs one `sscard serve` process with one card reader and the PSAM (so only
its 1-reader throughput figures; the N-reader path is the same code with
more threads, covered by test_bench_timing). PostgreSQL comes from
$SSCARD_BENCH_PG_URL (or the suite's $SSCARD_TEST_PG_URL) or scripts/pg-up
(stopped again only if the bench started it).
"""

from __future__ import annotations

import json
import os

import pytest
from bench_helpers import BENCH_SLOTS, SmokeRun, invoke

from emulator.stack import PcscStack
from terminal.bench.scale import PG_URL_ENV


@pytest.fixture(scope="session")
def smoke_run(pcsc_stack: PcscStack, tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    out = tmp_path_factory.mktemp("bench")
    preset = os.environ.get("SSCARD_TEST_PG_URL")
    with pytest.MonkeyPatch.context() as patch:
        if preset and not os.environ.get(PG_URL_ENV):
            patch.setenv(PG_URL_ENV, preset)
        result = invoke(["--smoke", "--slots", BENCH_SLOTS, "--out", str(out), "--note", "pytest smoke run"])
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return SmokeRun(result, out, doc)

"""The soak (issue 11, docs/reliability.md "Soak"): mixed flows against four
virtual cards through the local service process (HTTP API and national
WebSocket), the only errors the injected ones (wrong PIN, card pulled out),
and the service's resident memory and open file descriptors measured at the
start and the end.

CI runs a bounded soak (``SSCARD_SOAK_FLOWS``, default 600 flows); the full
soak is the same test with ``SSCARD_SOAK_FLOWS=10000`` (and
``SSCARD_SOAK_REPORT=<file>`` to keep the figures as JSON)::

    SSCARD_SOAK_FLOWS=10000 SSCARD_SOAK_REPORT=/tmp/soak.json \\
        scripts/isolated .venv/bin/python -m pytest tests/reliability/test_rel_soak.py -s

Limits (not timings): the file descriptors of the service may not grow by
more than FD_SLACK and its resident memory by more than RSS_SLACK_KIB
between the start (after a warm-up of every flow) and the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_rig import Rig
from rel_soak import insert_cards, run_soak

FLOWS = int(os.environ.get("SSCARD_SOAK_FLOWS", "600"))
REPORT = os.environ.get("SSCARD_SOAK_REPORT")
FD_SLACK = 8
RSS_SLACK_KIB = 64 * 1024


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    # The service journals to its own SQLite registry (SSCARD_DATA_DIR of the process).
    made = Rig(tmp_path, journal="registry", extra={"service": {"log_level": "WARNING"}})
    try:
        yield made
    finally:
        made.close()


def test_soak_mixed_flows_on_four_cards(rig: Rig) -> None:
    cards = insert_cards(rig)
    report = run_soak(rig, cards, FLOWS)
    report.events = len(rig.events.seen) + rig.events.events.qsize()
    print(report.summary())
    if REPORT:
        Path(REPORT).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    assert not report.unexpected, report.unexpected[:10]
    assert report.flows == FLOWS
    assert report.injected["wrong_pin"] > 0 and report.injected["removed_card"] > 0
    assert report.fd_growth <= FD_SLACK, report.to_dict()
    assert report.rss_growth_kib <= RSS_SLACK_KIB, report.to_dict()
    assert rig.service.alive

"""The registry database unavailable under the local service, and restored
(issue 11).

The service journals to the registry (``journal.kind = "registry"``) on a
PostgreSQL cluster of its own (scripts/pg-up with a private directory and
port; scripts/pg-down stops exactly that cluster, never the test run's
shared one).  While the database is down, flows that need the registry
(``needs_registry`` in terminal/data/presentation.toml: PIN, writes,
life cycle, wallet) are refused with ``registry_unavailable`` (-1166) before
anything is sent to the card, and the flows that do not (reads, status,
authenticity, the national iReadCardBas) keep working; once the database
is back, everything is journaled again without restarting the service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rel_rig import EF07_PHONE, Rig, assert_refused
from rel_service import national_call

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal.registry import open_registry

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
PG_PORT = "38471"  # below the ephemeral range, away from pg-up's default 54329
SLOT = 48


class PrivatePostgres:
    """A PostgreSQL cluster of this module's own (pg-up / pg-down on a private directory)."""

    def __init__(self) -> None:
        # the server runs as the postgres user: a directory it can enter (not pytest's 0700 tmp)
        self.dir = Path(tempfile.mkdtemp(prefix="sscard-rel-pg-"))
        self.dir.chmod(0o755)
        self.env = {**os.environ, "SSCARD_PG_DIR": str(self.dir), "SSCARD_PG_PORT": PG_PORT}
        self.url = ""

    def up(self) -> str:
        up = [sys.executable, str(SCRIPTS / "pg-up"), "--json"]
        done = subprocess.run(up, capture_output=True, text=True, env=self.env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        info = json.loads(done.stdout.strip().splitlines()[-1])
        assert info["started"], "pg-up reused a cluster it did not start"
        self.url = str(info["url"]).replace("postgresql://", "postgresql+psycopg://", 1)
        return self.url

    def down(self, *, purge: bool = False) -> None:
        args = [sys.executable, str(SCRIPTS / "pg-down")] + (["--purge"] if purge else [])
        done = subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]

    def journal_rows(self) -> list[tuple[str, str]]:
        """``(operation, state)`` of every journal entry, oldest first."""
        registry, journal = open_registry(self.url)
        try:
            return [(entry.operation, entry.state) for entry in journal.query()]
        finally:
            registry.close()


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down(purge=True)
        shutil.rmtree(cluster.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, pg: PrivatePostgres) -> Iterator[Rig]:
    made = Rig(tmp_path_factory.mktemp("registry"), env={"SSCARD_DB_URL": pg.url}, journal="registry")
    card = CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE))
    made.put(SLOT, card)
    made.wait_card(SLOT)
    try:
        yield made
    finally:
        made.close()


def test_registry_down_refuses_what_needs_it_and_serves_the_rest(rig: Rig, pg: PrivatePostgres) -> None:
    card = rig.links[SLOT].card
    assert isinstance(card, CardOS)
    assert rig.call("/card/write", SLOT, address=EF07_PHONE, data=["13900000001"])[0] == 200
    journaled = len(pg.journal_rows())
    assert ("card.write", "completed") in pg.journal_rows()

    pg.down()
    tries, phone = card.image.pin.tries_left, rig.call("/card/read", SLOT, address=EF07_PHONE)[1]
    for path in ("/card/basic", "/card/holder", "/card/status", "/card/authenticate", "/pin/status"):
        status, body = rig.call(path, SLOT)
        assert status == 200, (path, body)
    assert rig.call("/card/read", SLOT, address=EF07_PHONE)[1] == phone
    with rig.service.national_ws() as ws:
        answer = national_call(ws, "iReadCardBas", iType=3)
    assert answer["success"] == 0, answer

    refused: dict[str, dict[str, Any]] = {
        "/card/write": {"address": EF07_PHONE, "data": ["13900000002"]},
        "/pin/verify": {"pin": "211008"},
        "/pin/change": {"old_pin": "211008", "new_pin": "135790"},
        "/card/activate": {},
        "/wallet/load": {"amount": "10.00"},
    }
    for path, request in refused.items():
        status, answer_body = rig.call(path, SLOT, **request)
        assert_refused(status, answer_body, {"registry_unavailable"})
        assert answer_body["national_code"] == "-1166", path
        assert answer_body["message"].startswith("卡状态登记库暂时无法访问，不能办理"), answer_body
        assert "postgresql" not in json.dumps(answer_body), "the database URL reached the client"
    assert card.image.pin.tries_left == tries  # nothing was sent for the refused flows
    assert card.image.life_cycle is LifeCycle.ACTIVE
    assert rig.call("/card/read", SLOT, address=EF07_PHONE)[1] == phone
    assert rig.service.alive

    pg.up()
    assert rig.call("/card/write", SLOT, address=EF07_PHONE, data=["13900000003"])[0] == 200
    assert rig.call("/pin/verify", SLOT, pin="211008")[1]["ok"] is True
    rows = pg.journal_rows()
    flows_rows = [row for row in rows[journaled:] if row[0] != "card.present"]  # the gate's own check
    assert flows_rows[-2:] == [("card.write", "completed"), ("pin.verify", "completed")]
    assert all(state == "completed" for _, state in rows), rows
    log = rig.service.log_text()
    assert "runs without a journal entry" in log and "registry_unavailable" in log

"""Fixtures of the terminal-registry tests: the demo PSAM in vpcd slot 7, the
card reader of slot 6, registries on SQLite and PostgreSQL, sessions.

PostgreSQL comes from $SSCARD_TEST_PG_URL or else from scripts/pg-up (it
installs and starts a throwaway cluster, or reuses a running one), and is
stopped at the end only if this session started it.  Each test gets its own
schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from pg_cluster import cluster_url
from psam_slot import demo_psam_source
from terminal_registry_support import CARD_SLOT, PSAM_SLOT, FakeClock, Terminal

from emulator.stack import PcscStack
from terminal.keysource import PsamKeySource
from terminal.registry import open_registry


@pytest.fixture(scope="module")
def psam(pcsc_stack: PcscStack) -> Iterator[PsamKeySource]:
    """The demo PSAM in slot 7 for one test module (pulled out at its end)."""
    with demo_psam_source(pcsc_stack, PSAM_SLOT) as source:
        yield source


@pytest.fixture
def card_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(CARD_SLOT)


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    with cluster_url() as url:
        yield url


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (dropped afterwards)."""
    admin = sa.create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
    schema = f"tr_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in pg_base_url else "?"
    yield f"{pg_base_url}{joiner}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def make_terminal(card_reader: str, psam: PsamKeySource) -> Iterator[Callable[[str], Terminal]]:
    made: list[Terminal] = []

    def make(url: str) -> Terminal:
        clock = FakeClock()
        registry, journal = open_registry(url, clock=clock)
        terminal = Terminal(registry, journal, clock, card_reader, psam, [])
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        for session in terminal.opened:
            if session.transport.connected:
                session.close()
        terminal.registry.close()

"""Fixtures: every registry test runs on SQLite and on PostgreSQL.

PostgreSQL comes from $SSCARD_TEST_PG_URL, or else from scripts/pg-up (which
installs and starts a throwaway cluster); it is stopped at the end of the
session only if this session started it. Each test gets its own schema on
PostgreSQL and its own file on SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from pg_cluster import cluster_url

from card_model.values import ssn_check_digit
from terminal.registry import Actor, AgentInfo, Journal, NewCard, Registry, open_registry

TABLES = ("holders", "cards", "card_events", "journal")


def make_ssn(seq: int, birth: str = "19730521", region: str = "110102") -> str:
    body = f"{region}{birth}{seq % 1000:03d}"
    return body + ssn_check_digit(body)


def make_card_id(serial: int, region: str = "110102") -> str:
    return f"{region}D156000005{serial:016X}"


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now = self.now + timedelta(**kwargs)


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    with cluster_url() as url:
        yield url


@pytest.fixture(scope="session")
def pg_admin(pg_base_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of URLs of new empty databases on this test's backend."""
    made: list[str] = []

    def make() -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'registry-{uuid.uuid4().hex[:8]}.db'}"
        admin: sa.Engine = request.getfixturevalue("pg_admin")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        made.append(schema)
        return _with_search_path(admin.url.render_as_string(hide_password=False), schema)

    yield make
    if made:
        admin = request.getfixturevalue("pg_admin")
        with admin.connect() as conn:
            for schema in made:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def db_url(backend: str, fresh_url: Callable[[], str]) -> str:
    return fresh_url()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def new_card(serial: int, *, generation: int = 3, bank: str | None = None) -> NewCard:
    return NewCard(make_card_id(serial), f"X{serial:08d}", generation, "2025-06-01", "2035-05-31", bank)


CLERK = Actor(operator="op-001", terminal="BJ-T-0001")
AGENT = Actor(
    operator="op-001",
    terminal="BJ-T-0001",
    agent=AgentInfo(name="李四", id_number=make_ssn(77, birth="19800101"), authorisation="WT-2025-0001"),
)


@dataclass
class Env:
    """One opened registry plus helpers (tests get them through the `env` fixture)."""

    registry: Registry
    journal: Journal
    clock: FakeClock
    url: str
    clerk: Actor = CLERK
    agent: Actor = AGENT
    ssn = staticmethod(make_ssn)
    card_id = staticmethod(make_card_id)
    new_card = staticmethod(new_card)

    def counts(self) -> dict[str, int]:
        return table_counts(self.url)

    def refused(self, error: type[Exception], call: Callable[..., object], *args: object) -> Exception:
        """Assert `call(*args)` raises `error` and writes no row anywhere."""
        before = self.counts()
        with pytest.raises(error) as info:
            call(*args)
        assert self.counts() == before
        return info.value

    def holder(self, seq: int = 1, name: str = "张三") -> str:
        ssn = make_ssn(seq)
        self.registry.register_holder(ssn, name, gender="1")
        return ssn

    def card(
        self,
        serial: int,
        ssn: str,
        *,
        generation: int = 3,
        bank: str = "Bank of Beijing",
        status: str = "issued",
    ) -> str:
        card_id = make_card_id(serial)
        self.registry.register_card(
            card_id, f"X{serial:08d}", ssn, generation, bank, date(2025, 3, 1), date(2035, 2, 28), status
        )
        return card_id

    def active_card(self, serial: int = 1, seq: int = 1, *, generation: int = 3) -> str:
        return self.card(serial, self.holder(seq), status="active", generation=generation)


def table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one()) for t in TABLES}
    finally:
        engine.dispose()


@pytest.fixture
def env(db_url: str, clock: FakeClock) -> Iterator[Env]:
    registry, journal = open_registry(db_url, clock=clock)
    yield Env(registry, journal, clock, db_url)
    registry.close()

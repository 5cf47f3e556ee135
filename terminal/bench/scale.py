"""Registry and journal throughput on SQLite and PostgreSQL, and bytes written per operation.

Per back end, on a fresh database (a file in a temporary directory; a fresh
schema on the PostgreSQL cluster of ``scripts/pg-up``, dropped afterwards):

- ``register``: ``register_holder`` + ``register_card`` of a new holder/card;
- ``check_presented``: the decision a terminal asks for on every presentation;
- ``status_change``: ``report_loss_temporary`` / ``release_loss`` in turn;
- ``journal_entry``: ``Journal.begin`` + ``Journal.complete``;
- anchor ``commit``: one bare ``INSERT`` + ``COMMIT`` through the same driver
  with the registry's durability settings (SQLite WAL + ``synchronous=FULL``;
  PostgreSQL as configured): the least a durable write can cost there.

Figures are calls per second of busy time; the ratio is how many bare commits
one operation costs.  Growth: bytes the four registry tables (with indexes)
grow by per operation, from SQLite's ``dbstat`` pages and PostgreSQL's
``pg_total_relation_size``, over ``growth_ops`` operations of each kind.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from card_model.values import ssn_check_digit
from terminal.bench.context import BenchContext
from terminal.bench.errors import BenchSetupError
from terminal.bench.report import Figure, SectionResult, rate_figure
from terminal.bench.timing import Subject, measure_interleaved
from terminal.registry import Actor, Journal, Registry, open_registry

__all__ = ["run"]

SECTION = "scale"
TABLES = ("holders", "cards", "card_events", "journal")
PG_URL_ENV = "SSCARD_BENCH_PG_URL"
ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor(operator="bench", terminal="BENCH-T-0001")
BANK = "Bank of Beijing"


def _ssn(seq: int) -> str:
    birth = date(1950, 1, 1) + timedelta(days=seq // 1000)
    body = f"110102{birth:%Y%m%d}{seq % 1000:03d}"
    return body + ssn_check_digit(body)


def _card_id(seq: int) -> str:
    return f"110102D156000005{seq:016X}"


@dataclass
class _Workload:
    """Registry operations on a growing population (each call is one operation)."""

    registry: Registry
    journal: Journal
    next_seq: int = 0
    cards: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    toggles: int = 0
    reads: int = 0

    def register(self) -> None:
        seq = self.next_seq
        self.next_seq += 1
        ssn = _ssn(seq)
        self.registry.register_holder(
            ssn, "张三", gender="1", birth_date=f"{ssn[6:10]}-{ssn[10:12]}-{ssn[12:14]}"
        )
        card = _card_id(seq)
        self.registry.register_card(card, f"X{seq:08d}", ssn, 3, BANK, "2025-03-01", "2035-02-28", "active")
        self.cards.append(card)

    def check_presented(self) -> None:
        card = self.cards[self.reads % len(self.cards)]
        self.reads += 1
        self.registry.check_presented(card)

    def status_change(self) -> None:
        card = self.cards[self.toggles % len(self.cards)]
        self.toggles += 1
        if card in self.lost:
            self.registry.release_loss(card, ACTOR)
            self.lost.discard(card)
        else:
            self.registry.report_loss_temporary(card, ACTOR)
            self.lost.add(card)

    def journal_entry(self) -> None:
        card = self.cards[self.toggles % len(self.cards)]
        entry = self.journal.begin(
            "read_basic", card_id=card, terminal=ACTOR.terminal, operator=ACTOR.operator
        )
        self.journal.complete(entry, result="ok")


@dataclass
class _Backend:
    name: str
    url: str
    commit: Callable[[], None]
    size: Callable[[], dict[str, int]]
    close: Callable[[], None]


def _sqlite_backend(directory: Path) -> _Backend:
    path = directory / "registry.db"
    url = f"sqlite:///{path}"
    anchor = sqlite3.connect(directory / "anchor.db", isolation_level=None)
    anchor.execute("PRAGMA journal_mode = WAL")
    anchor.execute("PRAGMA synchronous = FULL")
    anchor.execute("CREATE TABLE IF NOT EXISTS anchor (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")

    def commit() -> None:
        anchor.execute("BEGIN IMMEDIATE")
        anchor.execute("INSERT INTO anchor (v) VALUES (?)", ("x" * 32,))
        anchor.execute("COMMIT")

    def size() -> dict[str, int]:
        db = sqlite3.connect(path)
        try:
            out = {}
            for table in TABLES:
                row = db.execute(
                    "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN "
                    "(SELECT name FROM sqlite_schema WHERE tbl_name = ?)",
                    (table,),
                ).fetchone()
                out[table] = int(row[0])
            return out
        finally:
            db.close()

    return _Backend("sqlite", url, commit, size, anchor.close)


def _pg_base_url(ctx: BenchContext) -> tuple[str, bool]:
    preset = os.environ.get(PG_URL_ENV)
    if preset:
        return preset, False
    script = ROOT / "scripts" / "pg-up"
    if not script.exists():
        raise BenchSetupError(f"no PostgreSQL: set {PG_URL_ENV} or run from the source tree (scripts/pg-up)")
    ctx.log("scale: scripts/pg-up")
    try:
        up = subprocess.run(
            [sys.executable, str(script), "--json"], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchSetupError(f"scripts/pg-up could not run: {exc}") from exc
    if up.returncode != 0:
        raise BenchSetupError(f"scripts/pg-up failed ({up.returncode}): {up.stderr.strip()[-500:]}")
    info = json.loads(up.stdout.strip().splitlines()[-1])
    return str(info["url"]), bool(info["started"])


@contextmanager
def _postgres_backend(ctx: BenchContext) -> Iterator[_Backend]:
    base, started = _pg_base_url(ctx)
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql(f"CREATE TABLE {schema}.anchor (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)")
        url = admin.url.render_as_string(hide_password=False)
        joiner = "&" if "?" in url else "?"
        url = f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"
        raw = admin.raw_connection()
        driver = raw.driver_connection
        if driver is None:
            raise BenchSetupError("PostgreSQL connection has no driver connection")
        driver.autocommit = True
        cursor = raw.cursor()

        def commit() -> None:
            # the schema name is ours (bench_ + 12 hex digits), never input
            cursor.execute(f"INSERT INTO {schema}.anchor (v) VALUES (%s)", ("x" * 32,))  # noqa: S608

        def size() -> dict[str, int]:
            out = {}
            for table in TABLES:
                cursor.execute("SELECT pg_total_relation_size(%s::regclass)", (f"{schema}.{table}",))
                row = cursor.fetchone()
                out[table] = int(row[0]) if row else 0
            return out

        try:
            yield _Backend("postgresql", url, commit, size, raw.close)
        finally:
            raw.close()
    finally:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            admin.dispose()
            if started:
                subprocess.run(
                    [sys.executable, str(ROOT / "scripts" / "pg-down")],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )


def _measure(ctx: BenchContext, result: SectionResult, backend: _Backend) -> None:
    settings = ctx.settings(SECTION)
    plan = ctx.plan(SECTION)
    growth_ops = int(settings["growth_ops"])
    registry, journal = open_registry(backend.url)
    try:
        work = _Workload(registry, journal)
        for _ in range(max(10, plan.warmup)):
            work.register()
        ctx.log(f"scale: {backend.name} timing")
        samples = measure_interleaved(
            [
                Subject("commit", backend.commit),
                Subject("register", work.register),
                Subject("check_presented", work.check_presented),
                Subject("status_change", work.status_change),
                Subject("journal_entry", work.journal_entry),
            ],
            plan,
        )
        prefix = f"{SECTION}.{backend.name}"
        anchor = result.add(
            rate_figure(
                f"{prefix}.commit",
                SECTION,
                f"{backend.name}: bare INSERT + COMMIT (durable write floor)",
                samples["commit"],
            )
        )
        labels = {
            "register": "register holder + card",
            "check_presented": "check_presented (read)",
            "status_change": "status change (loss report / release)",
            "journal_entry": "journal entry (begin + complete)",
        }
        for op, label in labels.items():
            result.add(
                rate_figure(
                    f"{prefix}.{op}",
                    SECTION,
                    f"{backend.name}: {label}",
                    samples[op],
                    anchor=anchor,
                    meaning="bare commits per operation",
                )
            )
        ctx.log(f"scale: {backend.name} growth")
        growth: dict[str, Callable[[], None]] = {
            "register": work.register,
            "status_change": work.status_change,
            "journal_entry": work.journal_entry,
        }
        for op, call in growth.items():
            before = backend.size()
            for _ in range(growth_ops):
                call()
            after = backend.size()
            per_table = {t: (after[t] - before[t]) / growth_ops for t in TABLES}
            result.add(
                Figure(
                    id=f"{prefix}.{op}.growth",
                    section=SECTION,
                    label=f"{backend.name}: bytes added per {labels[op]}",
                    unit="bytes/op",
                    value=sum(per_table.values()),
                    details={"operations": growth_ops, "per_table": per_table},
                )
            )
    finally:
        registry.close()


def run(ctx: BenchContext, result: SectionResult) -> None:
    with tempfile.TemporaryDirectory(prefix="sscard-bench-") as tmp:
        backend = _sqlite_backend(Path(tmp))
        try:
            _measure(ctx, result, backend)
        finally:
            backend.close()
    with _postgres_backend(ctx) as pg:
        _measure(ctx, result, pg)
    result.notes.append(
        "one client, operations in sequence; PostgreSQL is the throwaway cluster of scripts/pg-up "
        "(fsync off), so its commits do not wait for the disk"
    )

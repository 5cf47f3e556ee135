"""Where the registry lives: URL resolution, engine set-up, transactions, migrations.

SQLite (default): WAL journal, synchronous=FULL, foreign keys on, and every
write transaction opened with BEGIN IMMEDIATE so that writers are serialised
before they read what they will change. PostgreSQL: the registry locks the rows
it changes with SELECT ... FOR UPDATE inside the write transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from terminal.registry.errors import RegistryStorageError, RegistryUrlInvalid

DEFAULT_FILE = "registry.db"
APP_NAME = "sscard"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Switching a new database file to WAL takes an exclusive lock, and SQLite
# answers "database is locked" at once (no busy handler) to a connection that
# meets another one in the middle of that switch: several processes opening a
# new registry at the same moment.  The switch is retried this long.
SQLITE_WAL_SWITCH_RETRY_S = 10.0
_WAL_SWITCH_PAUSE_S = 0.02
# Seconds a PostgreSQL connection attempt may take (unless the URL sets
# connect_timeout): a terminal whose registry is unreachable answers, it does not hang.
PG_CONNECT_TIMEOUT_S = 5
# Key of the PostgreSQL advisory lock that serialises concurrent migrations.
MIGRATION_LOCK_KEY = 0x5C_CA_2D_01
_WRITE = "registry_write"


def default_sqlite_path() -> Path:
    base = os.environ.get("SSCARD_DATA_DIR") or platformdirs.user_data_dir(APP_NAME)
    return Path(base) / DEFAULT_FILE


def resolve_url(url: str | None) -> URL:
    """The database URL: `url`, else $SSCARD_DB_URL, else the SQLite file in the data dir."""
    raw = url if url is not None else (os.environ.get("SSCARD_DB_URL") or None)
    if raw is None:
        path = default_sqlite_path()
        return URL.create("sqlite", database=str(path))
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise RegistryUrlInvalid("not a database URL", detail_zh="不是数据库地址") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise RegistryUrlInvalid(
                "in-memory SQLite cannot hold a registry; give a file",
                detail_zh="内存数据库不能作为登记库，请指定文件",
            )
        return parsed.set(drivername="sqlite")
    raise RegistryUrlInvalid(parsed.drivername)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook below issue BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    deadline = time.monotonic() + SQLITE_WAL_SWITCH_RETRY_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_SWITCH_PAUSE_S)


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


class Database:
    """One engine on one registry database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            assert self.url.database is not None
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(self.url, hide_parameters=True)
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            connect_args = (
                {} if "connect_timeout" in self.url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
            )
            self.engine = create_engine(
                self.url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args
            )

    @property
    def shown_url(self) -> str:
        """The URL without its password, fit for messages."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connection(write=False) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite; callers lock rows FOR UPDATE."""
        with self._connection(write=True) as conn:
            yield conn

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            reason = (
                str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            )
            raise RegistryStorageError(
                f"{self.shown_url}: {reason}", detail_zh=f"{self.shown_url}：{reason}"
            ) from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision; idempotent, safe to race."""
        config = Config()
        config.set_main_option("script_location", "terminal.registry:migrations")
        try:
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:  # RegistryStorageError from write() passes through
            raise RegistryStorageError(
                f"migrating {self.shown_url} failed: {type(exc).__name__}",
                detail_zh=f"登记库 {self.shown_url} 升级失败",
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()

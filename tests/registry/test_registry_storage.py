"""Where the registry lives, its migrations and its SQLite settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import platformdirs
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from terminal.registry import default_sqlite_path, errors, open_registry, resolve_url
from terminal.registry.db import Database
from terminal.registry.schema import metadata


def test_default_location_is_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSCARD_DB_URL", raising=False)
    monkeypatch.delenv("SSCARD_DATA_DIR", raising=False)
    assert default_sqlite_path() == Path(platformdirs.user_data_dir("sscard")) / "registry.db"
    monkeypatch.setenv("SSCARD_DATA_DIR", str(tmp_path / "data"))
    registry, _ = open_registry()
    try:
        assert (tmp_path / "data" / "registry.db").is_file()
        assert registry._db.url.database == str(tmp_path / "data" / "registry.db")
    finally:
        registry.close()


def test_env_url_overrides_the_default_and_explicit_url_overrides_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSCARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSCARD_DB_URL", f"sqlite:///{tmp_path / 'fleet.db'}")
    assert resolve_url(None).database == str(tmp_path / "fleet.db")
    assert resolve_url(f"sqlite:///{tmp_path / 'x.db'}").database == str(tmp_path / "x.db")
    assert resolve_url("postgresql://u:secret@h:5/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "not a url", "postgresql+asyncpg://h/d"]
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(errors.RegistryUrlInvalid):
        resolve_url(url)


def test_unreachable_server_is_a_storage_error_without_password() -> None:
    with pytest.raises(errors.RegistryStorageError) as info:
        open_registry("postgresql://sscard:hunter2@127.0.0.1:1/none?connect_timeout=2")
    assert "hunter2" not in str(info.value) and "hunter2" not in info.value.message_zh
    assert info.value.exit_code == 1


def test_sqlite_runs_in_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    registry, _ = open_registry(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        with registry._db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        registry.close()


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "terminal.registry:migrations")
    return config


def test_migrations_are_idempotent_and_match_the_schema(fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    for _ in range(3):
        registry, _journal = open_registry(url)
        registry.close()
    db = Database(url)
    try:
        with db.read() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == ScriptDirectory.from_config(_config()).get_current_head()
            diff = compare_metadata(context, metadata)
            assert diff == []
            # compare_metadata skips CHECK constraints: their names must match too
            inspector = sa.inspect(conn)
            for table in ("cards", "journal"):
                found = {c["name"] for c in inspector.get_check_constraints(table)}
                declared = {
                    c.name for c in metadata.tables[table].constraints if isinstance(c, sa.CheckConstraint)
                }
                assert found == declared, table
    finally:
        db.dispose()


def test_downgrade_and_upgrade_again(fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    db = Database(url)
    try:
        db.migrate()
        config = _config()
        with db.write() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with db.read() as conn:
            assert not sa.inspect(conn).has_table("journal")
        db.migrate()
        with db.read() as conn:
            assert {"holders", "cards", "card_events", "journal"} <= set(sa.inspect(conn).get_table_names())
    finally:
        db.dispose()


def test_offline_sql_for_a_dba(capsys: pytest.CaptureFixture[str]) -> None:
    """`alembic upgrade head --sql` equivalent: the DDL a DBA can review before a fleet roll-out."""
    config = _config()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://dba@db/sscard")
    command.upgrade(config, "head", sql=True)
    ddl = capsys.readouterr().out
    assert "CREATE TABLE journal" in ddl and "CREATE TRIGGER journal_append_only" in ddl
    assert "INSERT INTO alembic_version" in ddl


class _LockedCursor:
    """A cursor whose WAL switch meets another process's switch ``locked`` times."""

    def __init__(self, locked: int, message: str = "database is locked") -> None:
        self.locked = locked
        self.message = message
        self.calls = 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.locked:
            raise sqlite3.OperationalError(self.message)


def test_the_wal_switch_waits_for_another_process_switching(monkeypatch: pytest.MonkeyPatch) -> None:
    from terminal.registry import db

    monkeypatch.setattr(db, "_WAL_SWITCH_PAUSE_S", 0.0)
    cursor = _LockedCursor(locked=3)
    db._switch_to_wal(cursor)  # type: ignore[arg-type]
    assert cursor.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        db._switch_to_wal(_LockedCursor(locked=1, message="disk I/O error"))  # type: ignore[arg-type]
    monkeypatch.setattr(db, "SQLITE_WAL_SWITCH_RETRY_S", 0.0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db._switch_to_wal(_LockedCursor(locked=5))  # type: ignore[arg-type]

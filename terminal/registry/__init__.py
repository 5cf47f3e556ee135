"""Card status registry and audit journal (SQLite by default, PostgreSQL for a fleet).

    registry, journal = open_registry()            # SQLite file in the data dir
    registry, journal = open_registry("postgresql+psycopg://user@host/db")

See docs/registry.md for the schema, the rules and the error codes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from terminal.registry.db import Database, default_sqlite_path, resolve_url
from terminal.registry.journal import Journal
from terminal.registry.models import (
    Actor,
    AgentInfo,
    CardEvent,
    CardRecord,
    Decision,
    HolderRecord,
    JournalEntry,
    NewCard,
)
from terminal.registry.registry import Registry

__all__ = [
    "Actor",
    "AgentInfo",
    "CardEvent",
    "CardRecord",
    "Decision",
    "HolderRecord",
    "Journal",
    "JournalEntry",
    "NewCard",
    "Registry",
    "default_sqlite_path",
    "open_registry",
    "resolve_url",
]


def open_registry(
    url: str | None = None, *, clock: Callable[[], datetime] | None = None
) -> tuple[Registry, Journal]:
    """Open (creating and migrating as needed) the registry database.

    `url` None: $SSCARD_DB_URL if set, else the SQLite file `registry.db` under
    $SSCARD_DATA_DIR or the user data directory. `clock` returns the current
    time (aware; naive values are taken as UTC) and is injected for tests.
    Both objects share one engine; `Registry.close()` releases it.
    """
    db = Database(url)
    try:
        db.migrate()
    except BaseException:
        db.dispose()
        raise
    return Registry(db, clock), Journal(db, clock)

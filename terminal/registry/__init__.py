"""Card status registry and audit journal (SQLite by default, PostgreSQL for a fleet).

    registry, journal = open_registry()            # SQLite file in the data dir
    registry, journal = open_registry("postgresql+psycopg://user@host/db")

See docs/registry.md for the schema, the rules and the error codes.

The package is light to import: its public names are loaded on first use
(PEP 562), so code that only needs the errors, the catalogue or the journal
sanitiser (every card flow does, through ``terminal.journal_hook``) does not
pay for SQLAlchemy and Alembic until a database is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    "Database",
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

#: Public name -> the submodule that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "Actor": "models",
    "AgentInfo": "models",
    "CardEvent": "models",
    "CardRecord": "models",
    "Decision": "models",
    "HolderRecord": "models",
    "JournalEntry": "models",
    "NewCard": "models",
    "Database": "db",
    "default_sqlite_path": "db",
    "resolve_url": "db",
    "Journal": "journal",
    "Registry": "registry",
}


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def open_registry(
    url: str | None = None, *, clock: Callable[[], datetime] | None = None
) -> tuple[Registry, Journal]:
    """Open (creating and migrating as needed) the registry database.

    `url` None: $SSCARD_DB_URL if set, else the SQLite file `registry.db` under
    $SSCARD_DATA_DIR or the user data directory. `clock` returns the current
    time (aware; naive values are taken as UTC) and is injected for tests.
    Both objects share one engine; `Registry.close()` releases it.
    """
    from terminal.registry.db import Database
    from terminal.registry.journal import Journal
    from terminal.registry.registry import Registry

    db = Database(url)
    try:
        db.migrate()
    except BaseException:
        db.dispose()
        raise
    return Registry(db, clock), Journal(db, clock)

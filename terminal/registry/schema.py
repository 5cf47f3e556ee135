"""Table definitions (SQLAlchemy Core). The migrations create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from terminal.registry.timeutil import utc
from terminal.registry.validation import NAME_COLUMN_CHARS

STATUSES = ("issued", "active", "temp_lost", "lost", "replaced", "ss_cancelled", "cancelled")
JOURNAL_KINDS = ("begin", "complete", "torn", "resolve")
JOURNAL_RESULTS = ("ok", "failed", "refused")

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = utc(value)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

holders = Table(
    "holders",
    metadata,
    Column("ssn", String(18), primary_key=True),
    Column("name", String(NAME_COLUMN_CHARS), nullable=False),
    Column("gender", String(1)),
    Column("birth_date", Date),
    Column("registered_at", UTCDateTime, nullable=False),
)

cards = Table(
    "cards",
    metadata,
    Column("card_id", String(32), primary_key=True),
    Column("card_number", String(9), nullable=False, index=True),
    Column("ssn", String(18), ForeignKey("holders.ssn"), nullable=False, index=True),
    Column("generation", SmallInteger, nullable=False),
    Column("bank", String(8), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("expiry_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_since", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    Column("medical_ended_at", UTCDateTime),
    Column("medical_ended_by", String(32), ForeignKey("cards.card_id")),
    # The card this one was issued to succeed (replacement or change of bank);
    # unique, so one card can have one successor only.
    Column("replaces", String(32), ForeignKey("cards.card_id"), unique=True),
    Column("version", Integer, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    CheckConstraint("generation IN (1, 2, 3)", name="generation"),
    CheckConstraint(_in("status", STATUSES), name="status"),
    CheckConstraint("expiry_date > issue_date", name="validity"),
)

card_events = Table(
    "card_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("card_id", String(32), ForeignKey("cards.card_id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("operator", String(200), nullable=False),
    Column("terminal", String(200), nullable=False),
    Column("agent", String(300)),
    Column("related_card_id", String(32)),
    Column("note", String(500)),
)

journal = Table(
    "journal",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    # For every row but `begin`: the begin row (the entry) it belongs to.
    Column("entry_id", BigId, ForeignKey("journal.id"), index=True),
    # For `complete` and `resolve` rows: the entry they close (unique: one closing row).
    Column("closes", BigId, ForeignKey("journal.id"), unique=True),
    Column("recorded_at", UTCDateTime, nullable=False, index=True),
    Column("operation", String(64)),
    Column("card_id", String(32), index=True),
    Column("terminal", String(200), index=True),
    Column("operator", String(200)),
    Column("agent", String(300)),
    Column("result", String(8)),
    Column("national_code", Integer),
    Column("sw", Integer),
    Column("resolution", String(64)),
    Column("note", String(500)),
    Column("details", Text),
    UniqueConstraint("entry_id", "kind", name="uq_journal_entry_kind"),
    CheckConstraint(_in("kind", JOURNAL_KINDS), name="kind"),
    CheckConstraint(f"result IS NULL OR {_in('result', JOURNAL_RESULTS)}", name="result"),
    CheckConstraint("sw IS NULL OR (sw >= 0 AND sw <= 65535)", name="sw"),
    CheckConstraint(
        "(kind = 'begin' AND entry_id IS NULL AND closes IS NULL AND operation IS NOT NULL"
        " AND terminal IS NOT NULL AND operator IS NOT NULL)"
        " OR (kind = 'torn' AND entry_id IS NOT NULL AND closes IS NULL)"
        " OR (kind IN ('complete', 'resolve') AND entry_id IS NOT NULL AND closes = entry_id"
        " AND result IS NOT NULL)",
        name="shape",
    ),
)

APPEND_ONLY_TABLES = ("journal", "card_events")

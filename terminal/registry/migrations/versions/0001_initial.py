"""Holders, cards, card history and the append-only journal.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from terminal.registry.schema import BigId, UTCDateTime

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("journal", "card_events")
STATUSES = "'issued', 'active', 'temp_lost', 'lost', 'replaced', 'ss_cancelled', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "holders",
        sa.Column("ssn", sa.String(18), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("gender", sa.String(1)),
        sa.Column("birth_date", sa.Date),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("ssn", name="pk_holders"),
    )
    op.create_table(
        "cards",
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("card_number", sa.String(9), nullable=False),
        sa.Column("ssn", sa.String(18), nullable=False),
        sa.Column("generation", sa.SmallInteger, nullable=False),
        sa.Column("bank", sa.String(8), nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("expiry_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_since", UTCDateTime, nullable=False),
        sa.Column("activated_at", UTCDateTime),
        sa.Column("medical_ended_at", UTCDateTime),
        sa.Column("medical_ended_by", sa.String(32)),
        sa.Column("replaces", sa.String(32)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("card_id", name="pk_cards"),
        sa.ForeignKeyConstraint(["ssn"], ["holders.ssn"], name="fk_cards_ssn"),
        sa.ForeignKeyConstraint(["medical_ended_by"], ["cards.card_id"], name="fk_cards_medical_ended_by"),
        sa.ForeignKeyConstraint(["replaces"], ["cards.card_id"], name="fk_cards_replaces"),
        sa.UniqueConstraint("replaces", name="uq_cards_replaces"),
        sa.CheckConstraint("generation IN (1, 2, 3)", name=op.f("ck_cards_generation")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_cards_status")),
        sa.CheckConstraint("expiry_date > issue_date", name=op.f("ck_cards_validity")),
    )
    op.create_index("ix_cards_card_number", "cards", ["card_number"])
    op.create_index("ix_cards_ssn", "cards", ["ssn"])

    op.create_table(
        "card_events",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("terminal", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(300)),
        sa.Column("related_card_id", sa.String(32)),
        sa.Column("note", sa.String(500)),
        sa.PrimaryKeyConstraint("id", name="pk_card_events"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.card_id"], name="fk_card_events_card_id"),
    )
    op.create_index("ix_card_events_card_id", "card_events", ["card_id"])

    op.create_table(
        "journal",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("entry_id", BigId),
        sa.Column("closes", BigId),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("operation", sa.String(64)),
        sa.Column("card_id", sa.String(32)),
        sa.Column("terminal", sa.String(200)),
        sa.Column("operator", sa.String(200)),
        sa.Column("agent", sa.String(300)),
        sa.Column("result", sa.String(8)),
        sa.Column("national_code", sa.Integer),
        sa.Column("sw", sa.Integer),
        sa.Column("resolution", sa.String(64)),
        sa.Column("note", sa.String(500)),
        sa.Column("details", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
        sa.ForeignKeyConstraint(["entry_id"], ["journal.id"], name="fk_journal_entry_id"),
        sa.ForeignKeyConstraint(["closes"], ["journal.id"], name="fk_journal_closes"),
        sa.UniqueConstraint("closes", name="uq_journal_closes"),
        sa.UniqueConstraint("entry_id", "kind", name="uq_journal_entry_kind"),
        sa.CheckConstraint("kind IN ('begin', 'complete', 'torn', 'resolve')", name=op.f("ck_journal_kind")),
        sa.CheckConstraint(
            "result IS NULL OR result IN ('ok', 'failed', 'refused')", name=op.f("ck_journal_result")
        ),
        sa.CheckConstraint("sw IS NULL OR (sw >= 0 AND sw <= 65535)", name=op.f("ck_journal_sw")),
        sa.CheckConstraint(
            "(kind = 'begin' AND entry_id IS NULL AND closes IS NULL AND operation IS NOT NULL"
            " AND terminal IS NOT NULL AND operator IS NOT NULL)"
            " OR (kind = 'torn' AND entry_id IS NOT NULL AND closes IS NULL)"
            " OR (kind IN ('complete', 'resolve') AND entry_id IS NOT NULL AND closes = entry_id"
            " AND result IS NOT NULL)",
            name=op.f("ck_journal_shape"),
        ),
    )
    op.create_index("ix_journal_entry_id", "journal", ["entry_id"])
    op.create_index("ix_journal_recorded_at", "journal", ["recorded_at"])
    op.create_index("ix_journal_card_id", "journal", ["card_id"])
    op.create_index("ix_journal_terminal", "journal", ["terminal"])

    _append_only_triggers()


def _append_only_triggers() -> None:
    """Rows of the journal and of the card history may be inserted, never changed or removed."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION registry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
    for table in APPEND_ONLY_TABLES:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION registry_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION registry_append_only()"
            )
        elif dialect == "sqlite":
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        else:
            raise RuntimeError(f"append-only triggers are written for sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY_TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS registry_append_only()")
    op.drop_table("journal")
    op.drop_table("card_events")
    op.drop_table("cards")
    op.drop_table("holders")

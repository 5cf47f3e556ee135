"""Fleet mode: the schema's owner migrates it, terminals connect with a role
holding only `terminal_grants` (docs/registry.md, "Fleet mode")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from terminal.registry import Actor, open_registry
from terminal.registry.errors import RegistryInputError
from terminal.registry.fleet import terminal_grants

CLERK = Actor(operator="op-001", terminal="BJ-T-0001")
SSN = "110102197305211008"
CARD_ID = "110102D156000005" + "0" * 15 + "5"


@dataclass(frozen=True)
class Fleet:
    owner_url: str
    terminal_url: str


def _url(admin: sa.Engine, schema: str, user: str | None = None, password: str | None = None) -> str:
    url = admin.url if user is None else admin.url.set(username=user, password=password)
    base = url.render_as_string(hide_password=False)
    return f"{base}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def fleet(pg_admin: sa.Engine) -> Iterator[Fleet]:
    suffix = uuid.uuid4().hex[:10]
    schema, role, password = f"fleet_{suffix}", f"terminal_{suffix}", uuid.uuid4().hex
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # any auth method
    try:
        owner_url = _url(pg_admin, schema)
        registry, _ = open_registry(owner_url)  # the owner creates and migrates the schema
        registry.close()
        with pg_admin.connect() as conn:
            for statement in terminal_grants(role, schema):
                conn.exec_driver_sql(statement)
        yield Fleet(owner_url, _url(pg_admin, schema, role, password))
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_a_terminal_role_does_everything_a_terminal_does(fleet: Fleet) -> None:
    registry, journal = open_registry(fleet.terminal_url)  # migration check only: no DDL
    try:
        card_id = CARD_ID
        registry.register_holder(SSN, "张三", gender="1")
        registry.register_card(
            card_id, "X00000005", SSN, 3, "Bank of Beijing", date(2025, 3, 1), date(2035, 2, 28), "active"
        )
        registry.report_loss_temporary(card_id, CLERK)
        registry.release_loss(card_id, CLERK)
        entry = journal.begin("pin.change", card_id=card_id, terminal="BJ-T-0001", operator="op-001")
        journal.complete(entry, result="ok")
        torn = journal.begin("card.block", card_id=card_id, terminal="BJ-T-0001", operator="op-001")
        journal.mark_torn(torn, "transport_error while APPLICATION BLOCK was in flight")
        journal.resolve(torn, resolution="card_state_applied", result="ok", note="the card is blocked")
        assert registry.card(card_id).status == "active"
        assert journal.incomplete(card_id) == []
    finally:
        registry.close()


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM journal",
        "TRUNCATE journal",
        "DELETE FROM cards",
        "UPDATE card_events SET note = 'x'",
        "DROP TRIGGER journal_append_only ON journal",
        "CREATE TABLE scratch (id integer)",
    ],
)
def test_a_terminal_role_cannot_erase_or_rewrite_history(fleet: Fleet, statement: str) -> None:
    engine = sa.create_engine(fleet.terminal_url)
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="InsufficientPrivilege"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_journal_rows_stay_append_only_for_a_terminal_role(fleet: Fleet) -> None:
    """UPDATE is granted on journal for row locks; the trigger still refuses it."""
    registry, journal = open_registry(fleet.owner_url)
    journal.begin("card.read", card_id=None, terminal="BJ-T-0001", operator="op-001")
    registry.close()
    engine = sa.create_engine(fleet.terminal_url)
    try:
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("UPDATE journal SET note = 'rewritten'")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("role", "schema"), [("Terminal", "public"), ("t; DROP", "public"), ("t", "a.b"), ("", "s")]
)
def test_grants_take_plain_identifiers_only(role: str, schema: str) -> None:
    with pytest.raises(RegistryInputError):
        terminal_grants(role, schema)


def test_grants_name_the_role_and_schema() -> None:
    grants = terminal_grants("sscard_terminal", "fleet")
    assert grants[0] == "GRANT USAGE ON SCHEMA fleet TO sscard_terminal"
    assert all("sscard_terminal" in g for g in grants)
    assert not any("DELETE" in g or "TRUNCATE" in g for g in grants)

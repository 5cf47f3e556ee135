"""The audit journal: intent first, outcome after, append-only, no secrets (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from terminal.registry import errors

if TYPE_CHECKING:
    from conftest import Env


def begin(env: Env, operation: str = "read_basic", card: int | None = 1, **kwargs: object) -> int:
    return env.journal.begin(
        operation,
        card_id=None if card is None else env.card_id(card),
        terminal=str(kwargs.pop("terminal", "BJ-T-0001")),
        operator="op-001",
        **kwargs,  # type: ignore[arg-type]
    )


def test_intent_then_outcome(env: Env) -> None:
    entry_id = begin(env, details={"itype": "3"})
    (pending,) = env.journal.incomplete()
    assert (pending.id, pending.state, pending.result, pending.incomplete) == (entry_id, "open", None, True)
    assert pending.details == {"itype": "3"} and pending.begun_at == env.clock.now
    env.clock.advance(seconds=2)
    done = env.journal.complete(
        entry_id, result="failed", national_code=-27010, sw=0x6982, details={"step": "read"}
    )
    assert (done.state, done.result, done.national_code, done.sw) == ("completed", "failed", -27010, 0x6982)
    assert done.completed_at == env.clock.now and done.outcome_details == {"step": "read"}
    assert env.journal.incomplete() == []
    assert env.journal.entry(entry_id) == done


def test_an_entry_closes_once(env: Env) -> None:
    entry_id = begin(env)
    env.journal.complete(entry_id, result="ok")
    error = env.refused(errors.JournalEntryClosed, lambda: env.journal.complete(entry_id, result="ok"))
    assert error.exit_code == 10  # type: ignore[attr-defined]
    env.refused(
        errors.JournalEntryClosed,
        lambda: env.journal.resolve(entry_id, resolution="checked", result="ok", note="n"),
    )
    env.refused(errors.JournalEntryClosed, env.journal.mark_torn, entry_id, "pulled")


def test_torn_entry_stays_incomplete_until_resolved(env: Env) -> None:
    entry_id = begin(env, "pin_change")
    torn = env.journal.mark_torn(entry_id, "card pulled during CHANGE PIN")
    assert torn.state == "torn" and torn.torn_note == "card pulled during CHANGE PIN" and torn.incomplete
    assert [e.id for e in env.journal.incomplete(env.card_id(1))] == [entry_id]
    assert env.journal.incomplete(env.card_id(2)) == []
    env.refused(errors.JournalEntryClosed, env.journal.mark_torn, entry_id, "again")
    resolved = env.journal.resolve(
        entry_id, resolution="pin_state_read", result="failed", note="PIN unchanged"
    )
    assert (resolved.state, resolved.result, resolved.resolution, resolved.resolution_note) == (
        "resolved",
        "failed",
        "pin_state_read",
        "PIN unchanged",
    )
    assert resolved.torn_note == "card pulled during CHANGE PIN"
    assert env.journal.incomplete() == []


def test_open_entry_may_be_resolved_directly(env: Env) -> None:
    entry_id = begin(env)
    assert (
        env.journal.resolve(entry_id, resolution="retried", result="ok", note="done on retry").state
        == "resolved"
    )


def test_unknown_entries_and_bad_outcomes_write_nothing(env: Env) -> None:
    entry_id = begin(env)
    env.refused(errors.JournalEntryNotFound, lambda: env.journal.complete(99_999, result="ok"))
    env.refused(errors.JournalInputInvalid, lambda: env.journal.complete(0, result="ok"))
    env.refused(errors.JournalInputInvalid, lambda: env.journal.complete(entry_id, result="maybe"))
    env.refused(
        errors.JournalInputInvalid, lambda: env.journal.complete(entry_id, result="ok", national_code=5)
    )
    env.refused(errors.JournalInputInvalid, lambda: env.journal.complete(entry_id, result="ok", sw=0x1_0000))
    env.refused(
        errors.JournalInputInvalid,
        lambda: env.journal.resolve(entry_id, resolution="", result="ok", note="n"),
    )
    env.refused(errors.JournalInputInvalid, lambda: env.journal.mark_torn(entry_id, ""))
    env.refused(errors.JournalInputInvalid, lambda: begin(env, "Bad Operation"))
    env.refused(errors.JournalInputInvalid, lambda: begin(env, terminal=""))
    env.refused(
        errors.InvalidCardId, lambda: env.journal.begin("x", card_id="12", terminal="t", operator="o")
    )
    env.refused(errors.JournalDetailsForbidden, lambda: begin(env, details={"new_pin": "123456"}))
    env.refused(
        errors.JournalDetailsForbidden,
        lambda: env.journal.complete(entry_id, result="ok", details={"session_key": "00"}),
    )
    # a follow-up row id is not an entry
    env.journal.complete(entry_id, result="ok")
    follow_up = _raw(env, "SELECT MAX(id) FROM journal")[0][0]
    env.refused(errors.JournalEntryNotFound, lambda: env.journal.mark_torn(int(follow_up), "x"))


def test_no_full_ssn_anywhere_in_journal_or_history(env: Env) -> None:
    ssn = env.holder(1)
    card_id = env.card(1, ssn)
    env.registry.activate(card_id, env.agent)
    assert env.agent.agent is not None
    agent_id = env.agent.agent.id_number
    entry_id = begin(
        env, details={"aac002": ssn, "remark": f"holder {ssn} agent {agent_id}"}, agent=f"李四 {agent_id}"
    )
    env.journal.mark_torn(entry_id, f"pulled; holder {ssn}")
    env.journal.resolve(entry_id, resolution="checked", result="ok", note=f"checked {ssn}")
    text = json.dumps(
        _raw(env, "SELECT * FROM journal") + _raw(env, "SELECT * FROM card_events"), default=str
    )
    assert ssn not in text and agent_id not in text
    assert ssn[:6] + "*" * 11 + ssn[-1] in text
    export = env.journal.export("json") + env.journal.export("csv")
    assert ssn not in export and agent_id not in export


def test_query_filters(env: Env) -> None:
    first = begin(env, "read_basic", 1, terminal="T-A")
    env.clock.advance(days=1)
    second = begin(env, "pin_verify", 2, terminal="T-B")
    env.clock.advance(days=1)
    third = begin(env, "read_basic", None, terminal="T-A")
    start = env.clock.now - timedelta(days=2)
    ids = lambda entries: [e.id for e in entries]  # noqa: E731
    assert ids(env.journal.query()) == [first, second, third]
    assert ids(env.journal.query(card_id=env.card_id(2))) == [second]
    assert ids(env.journal.query(terminal="T-A")) == [first, third]
    assert ids(env.journal.query(operation="read_basic")) == [first, third]
    assert ids(env.journal.query(since=start + timedelta(hours=1))) == [second, third]
    assert ids(env.journal.query(until=start + timedelta(days=1))) == [first]
    assert ids(
        env.journal.query(since=start.isoformat(), until=(start + timedelta(days=1, seconds=1)).isoformat())
    ) == [first, second]
    assert ids(env.journal.query(until=start.date())) == [first]  # a bare date includes its whole day
    assert ids(env.journal.query(limit=2)) == [first, second]
    env.journal.complete(second, result="ok")
    assert ids(env.journal.query(incomplete=True)) == [first, third]
    for bad in ({"since": "yesterday"}, {"limit": 0}, {"operation": "A B"}):
        with pytest.raises(errors.JournalInputInvalid):
            env.journal.query(**bad)  # type: ignore[arg-type]


def test_export_csv_and_json(env: Env) -> None:
    done = begin(env, "read_basic", 1, details={"note": "=HYPERLINK(1)"})
    env.journal.complete(done, result="refused", national_code=-1161)
    begin(env, "pin_verify", 1, terminal="-T")
    document = json.loads(env.journal.export("json", card_id=env.card_id(1)))
    assert document["format"] == "sscard-journal" and document["count"] == 2
    assert document["filters"] == {"card_id": env.card_id(1)}
    assert (
        document["entries"][0]["national_code"] == "-1161" and document["entries"][0]["result"] == "refused"
    )
    rows = list(csv.DictReader(io.StringIO(env.journal.export("csv"))))
    assert [r["operation"] for r in rows] == ["read_basic", "pin_verify"]
    assert rows[0]["national_code"] == "-1161" and rows[1]["state"] == "open"
    assert rows[1]["terminal"] == "'-T"  # no formula in a spreadsheet
    assert json.loads(rows[0]["details"]) == {"note": "=HYPERLINK(1)"}
    assert rows[0]["details"].startswith("{")
    with pytest.raises(errors.JournalInputInvalid):
        env.journal.export("xml")


@pytest.mark.parametrize("table", ["journal", "card_events"])
def test_rows_are_append_only_in_the_database(env: Env, table: str) -> None:
    card_id = env.active_card(1)
    env.registry.report_loss_temporary(card_id, env.clerk)
    before = _raw(env, f"SELECT * FROM {table} ORDER BY id")
    engine = sa.create_engine(env.url)
    try:
        statements = [f"UPDATE {table} SET card_id = NULL", f"DELETE FROM {table}"]
        if engine.dialect.name == "postgresql":
            statements.append(f"TRUNCATE {table}")
        for statement in statements:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert _raw(env, f"SELECT * FROM {table} ORDER BY id") == before


def _raw(env: Env, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(env.url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()

"""The append-only audit journal of card operations.

An entry is a `begin` row (the intent, committed before the card is touched)
plus at most one closing row (`complete` or `resolve`) and at most one `torn`
row, each linked to it by `entry_id`. Rows are only ever inserted; database
triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Row, and_, select
from sqlalchemy.exc import IntegrityError

from terminal.registry import sanitize, validation
from terminal.registry.db import Database
from terminal.registry.errors import JournalEntryClosed, JournalEntryNotFound, JournalInputInvalid
from terminal.registry.models import JournalEntry
from terminal.registry.schema import JOURNAL_RESULTS, journal
from terminal.registry.timeutil import Clock, iso, system_clock, utc

_OPERATION = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
_RESOLUTION = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
EXPORT_COLUMNS = (
    "id",
    "begun_at",
    "operation",
    "card_id",
    "terminal",
    "operator",
    "agent",
    "state",
    "result",
    "national_code",
    "sw",
    "completed_at",
    "resolution",
    "resolution_note",
    "resolved_at",
    "torn_at",
    "torn_note",
    "details",
    "outcome_details",
)
_FREE_TEXT_COLUMNS = frozenset(
    {"terminal", "operator", "agent", "resolution_note", "torn_note", "details", "outcome_details"}
)


# -- row writers shared with the registry (same transaction as its change) ---


def operation_name(value: object) -> str:
    if not isinstance(value, str) or not _OPERATION.fullmatch(value):
        raise JournalInputInvalid(
            "operation must be a lower-case identifier of at most 64 characters",
            detail_zh="操作名称须为小写标识符",
        )
    return value


def insert_begin(
    conn: Connection,
    *,
    now: datetime,
    operation: str,
    card_id: str | None,
    terminal: str,
    operator: str,
    agent: str | None,
    details: Mapping[str, str],
) -> int:
    entry_id = conn.execute(
        journal.insert()
        .values(
            kind="begin",
            recorded_at=now,
            operation=operation,
            card_id=card_id,
            terminal=terminal,
            operator=operator,
            agent=agent,
            details=_dump(details),
        )
        .returning(journal.c.id)
    ).scalar_one()
    return int(entry_id)


def insert_follow_up(
    conn: Connection,
    *,
    now: datetime,
    entry_id: int,
    kind: Literal["complete", "torn", "resolve"],
    result: str | None = None,
    national_code: int | None = None,
    sw: int | None = None,
    resolution: str | None = None,
    note: str | None = None,
    details: Mapping[str, str] | None = None,
) -> None:
    conn.execute(
        journal.insert().values(
            kind=kind,
            entry_id=entry_id,
            closes=entry_id if kind in ("complete", "resolve") else None,
            recorded_at=now,
            result=result,
            national_code=national_code,
            sw=sw,
            resolution=resolution,
            note=note,
            details=_dump(details) if details else None,
        )
    )


def _dump(details: Mapping[str, str] | None) -> str | None:
    return json.dumps(dict(details), ensure_ascii=False, sort_keys=True) if details else None


def _load(text: str | None) -> dict[str, str]:
    return dict(json.loads(text)) if text else {}


# -- reading ------------------------------------------------------------------

_b = journal.alias("b")
_c = journal.alias("c")
_t = journal.alias("t")
_ENTRY_SELECT = select(
    _b,
    _c.c.kind.label("c_kind"),
    _c.c.recorded_at.label("c_at"),
    _c.c.result.label("c_result"),
    _c.c.national_code.label("c_national_code"),
    _c.c.sw.label("c_sw"),
    _c.c.resolution.label("c_resolution"),
    _c.c.note.label("c_note"),
    _c.c.details.label("c_details"),
    _t.c.recorded_at.label("t_at"),
    _t.c.note.label("t_note"),
).select_from(
    _b.outerjoin(_c, _c.c.closes == _b.c.id).outerjoin(
        _t, and_(_t.c.entry_id == _b.c.id, _t.c.kind == "torn")
    )
)


def _entry(row: Row[Any]) -> JournalEntry:
    m = row._mapping
    if m["c_kind"] == "complete":
        state = "completed"
    elif m["c_kind"] == "resolve":
        state = "resolved"
    elif m["t_at"] is not None:
        state = "torn"
    else:
        state = "open"
    closed = m["c_kind"] is not None
    return JournalEntry(
        id=int(m["id"]),
        operation=m["operation"],
        card_id=m["card_id"],
        terminal=m["terminal"],
        operator=m["operator"],
        agent=m["agent"],
        begun_at=m["recorded_at"],
        details=_load(m["details"]),
        state=state,
        result=m["c_result"],
        national_code=m["c_national_code"],
        sw=m["c_sw"],
        completed_at=m["c_at"] if state == "completed" else None,
        outcome_details=_load(m["c_details"]) if closed else {},
        torn_at=m["t_at"],
        torn_note=m["t_note"],
        resolution=m["c_resolution"],
        resolution_note=m["c_note"] if state == "resolved" else None,
        resolved_at=m["c_at"] if state == "resolved" else None,
    )


def _moment(value: datetime | date | str | None, field: str, *, end: bool = False) -> datetime | None:
    """A filter bound; a bare date (UTC) as `end` means the end of that day."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = (
                date.fromisoformat(value)
                if len(value) == 10
                else datetime.fromisoformat(value.replace("Z", "+00:00"))
            )
        except ValueError:
            raise JournalInputInvalid(
                f"{field} must be an ISO date or time", detail_zh=f"{field} 须为ISO日期或时间"
            ) from None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return utc(datetime.combine(value + timedelta(days=1) if end else value, time.min))
    raise JournalInputInvalid(f"{field} must be an ISO date or time", detail_zh=f"{field} 须为ISO日期或时间")


class Journal:
    """Begin, complete, tear, resolve and query journal entries."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or system_clock

    def _now(self) -> datetime:
        return utc(self._clock())

    def close(self) -> None:
        self._db.dispose()

    def begin(
        self,
        operation: str,
        *,
        card_id: str | None,
        terminal: str,
        operator: str,
        agent: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> int:
        """Record the intent of an operation durably; returns the entry id."""
        name = operation_name(operation)
        cid = None if card_id is None else validation.card_id(card_id)
        terminal_text = sanitize.free_text(terminal, "terminal")
        operator_text = sanitize.free_text(operator, "operator")
        agent_text = None if agent is None else sanitize.free_text(agent, "agent", limit=300)
        clean = sanitize.details(details)
        with self._db.write() as conn:
            return insert_begin(
                conn,
                now=self._now(),
                operation=name,
                card_id=cid,
                terminal=terminal_text,
                operator=operator_text,
                agent=agent_text,
                details=clean,
            )

    def complete(
        self,
        entry_id: int,
        *,
        result: str,
        national_code: int = 0,
        sw: int | None = None,
        details: Mapping[str, str] | None = None,
    ) -> JournalEntry:
        """Record the outcome of an entry (once)."""
        fields = {
            "result": _result(result),
            "national_code": _national_code(national_code),
            "sw": _sw(sw),
            "details": sanitize.details(details),
        }
        return self._follow_up(entry_id, "complete", **fields)

    def mark_torn(self, entry_id: int, note: str) -> JournalEntry:
        """Record that the card was pulled or the terminal lost it mid-operation."""
        return self._follow_up(entry_id, "torn", note=sanitize.free_text(note, "note", limit=500))

    def resolve(self, entry_id: int, *, resolution: str, result: str, note: str) -> JournalEntry:
        """Close an open or torn entry once its outcome has been established."""
        if not isinstance(resolution, str) or not _RESOLUTION.fullmatch(resolution):
            raise JournalInputInvalid(
                "resolution must be a lower-case identifier of at most 64 characters",
                detail_zh="处理方式须为小写标识符",
            )
        return self._follow_up(
            entry_id,
            "resolve",
            resolution=resolution,
            result=_result(result),
            note=sanitize.free_text(note, "note", limit=500),
        )

    def _follow_up(
        self, entry_id: int, kind: Literal["complete", "torn", "resolve"], **fields: Any
    ) -> JournalEntry:
        entry_id = _entry_id(entry_id)
        try:
            with self._db.write() as conn:
                current = self._locked_entry(conn, entry_id)
                if current.state in ("completed", "resolved") or (kind == "torn" and current.state == "torn"):
                    raise JournalEntryClosed(entry_id=entry_id, state=current.state)
                insert_follow_up(conn, now=self._now(), entry_id=entry_id, kind=kind, **fields)
                return self._read_entry(conn, entry_id)
        except IntegrityError:
            # Another terminal closed the entry between our check and our insert.
            raise JournalEntryClosed(entry_id=entry_id, state="completed") from None

    def _locked_entry(self, conn: Connection, entry_id: int) -> JournalEntry:
        locked = conn.execute(
            select(journal.c.id).where(journal.c.id == entry_id, journal.c.kind == "begin").with_for_update()
        ).first()
        if locked is None:
            raise JournalEntryNotFound(entry_id=entry_id)
        return self._read_entry(conn, entry_id)

    def _read_entry(self, conn: Connection, entry_id: int) -> JournalEntry:
        row = conn.execute(_ENTRY_SELECT.where(_b.c.id == entry_id, _b.c.kind == "begin")).first()
        if row is None:
            raise JournalEntryNotFound(entry_id=entry_id)
        return _entry(row)

    def entry(self, entry_id: int) -> JournalEntry:
        with self._db.read() as conn:
            return self._read_entry(conn, _entry_id(entry_id))

    def incomplete(self, card_id: str | None = None) -> list[JournalEntry]:
        """Entries begun but neither completed nor resolved (torn ones included)."""
        return self.query(card_id, incomplete=True)

    def query(
        self,
        card_id: str | None = None,
        terminal: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        operation: str | None = None,
        *,
        incomplete: bool = False,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries begun in [since, until), oldest first, filtered by card, terminal,
        operation, and (incomplete=True) to those neither completed nor resolved."""
        clauses = [_b.c.kind == "begin"]
        if incomplete:
            clauses.append(_c.c.id.is_(None))
        if card_id is not None:
            clauses.append(_b.c.card_id == validation.card_id(card_id))
        if terminal is not None:
            clauses.append(_b.c.terminal == sanitize.free_text(terminal, "terminal"))
        if operation is not None:
            clauses.append(_b.c.operation == operation_name(operation))
        start, end = _moment(since, "since"), _moment(until, "until", end=True)
        if start is not None:
            clauses.append(_b.c.recorded_at >= start)
        if end is not None:
            clauses.append(_b.c.recorded_at < end)
        stmt = _ENTRY_SELECT.where(*clauses).order_by(_b.c.id)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise JournalInputInvalid("limit must be a positive integer", detail_zh="条数须为正整数")
            stmt = stmt.limit(limit)
        with self._db.read() as conn:
            return [_entry(r) for r in conn.execute(stmt)]

    def export(self, fmt: str, **filters: Any) -> str:
        """The entries `query(**filters)` selects, as CSV or as a JSON document."""
        entries = self.query(**filters)
        if fmt == "json":
            document = {
                "format": "sscard-journal",
                "version": 1,
                "exported_at": iso(self._now()),
                "filters": {k: _filter_text(v) for k, v in filters.items() if v is not None},
                "count": len(entries),
                "entries": [e.to_json() for e in entries],
            }
            return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
            writer.writeheader()
            for entry in entries:
                writer.writerow(_csv_row(entry))
            return buffer.getvalue()
        raise JournalInputInvalid("export format must be csv or json", detail_zh="导出格式须为 csv 或 json")


def _filter_text(value: object) -> str:
    return (iso(value) or "") if isinstance(value, datetime) else str(value)


def _csv_row(entry: JournalEntry) -> dict[str, str]:
    data = entry.to_json()
    row: dict[str, str] = {}
    for column in EXPORT_COLUMNS:
        value = data[column]
        if isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
        else:
            text = "" if value is None else str(value)
        # Keep spreadsheets from evaluating free text as a formula.
        if column in _FREE_TEXT_COLUMNS and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
            text = "'" + text
        row[column] = text
    return row


def _entry_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise JournalInputInvalid("entry id must be a positive integer", detail_zh="日志编号须为正整数")
    return value


def _result(value: object) -> str:
    if value not in JOURNAL_RESULTS:
        raise JournalInputInvalid(
            f"result must be one of {', '.join(JOURNAL_RESULTS)}", detail_zh="结果须为 ok、failed 或 refused"
        )
    return str(value)


def _national_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value > 0 or value < -0xFFFF:
        raise JournalInputInvalid(
            "national_code must be 0 or a negative national error code", detail_zh="国家接口错误码须为0或负数"
        )
    return value


def _sw(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise JournalInputInvalid("sw must be a status word 0000..FFFF", detail_zh="状态字须在0000至FFFF之间")
    return value

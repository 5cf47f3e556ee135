"""Helpers of the bad input table (data/bad_inputs.toml): the cases, the
card and registry snapshots that prove "writes nothing", and the values
that make a holder order or a request from a case."""

from __future__ import annotations

import sqlite3
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rel_tear import persistent

from card_model.demo import demo_holder
from emulator.card_os import CardOS

DATA = Path(__file__).parent / "data" / "bad_inputs.toml"
REGISTRY_TABLES = ("holders", "cards", "card_events")
DEFAULT_WRITE_DATA = "13700000000|"
# the registry check at connect (journaled ok when the registry allows the card): no card change
PRESENTATION = frozenset({"card.present"})


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    kind: str
    entries: dict[str, tuple[str, int]]
    raw: dict[str, Any] = field(repr=False)

    @property
    def value(self) -> str:
        return str(self.raw["value"]) * int(self.raw.get("repeat", 1))

    @property
    def fen(self) -> int:
        return int(self.raw["fen"])

    @property
    def yuan(self) -> str:
        return str(self.raw["yuan"])

    @property
    def write_data(self) -> str:
        return str(self.raw.get("data", DEFAULT_WRITE_DATA))

    def order_mapping(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The demo holder's order with this case's bad value in place."""
        person, card = demo_holder(str(self.raw.get("holder", "gen3")))
        holder = person.to_mapping()
        facts = {k: v for k, v in card.to_mapping().items() if k != "serial"}
        (holder if self.raw["part"] == "holder" else facts)[self.raw["field"]] = self.value
        return holder, facts


@cache
def cases() -> dict[str, Case]:
    with DATA.open("rb") as handle:
        doc = tomllib.load(handle)
    out = {}
    for row in doc["case"]:
        entries = {name.replace("_", ".", 1): (str(e[0]), int(e[1])) for name, e in row["entries"].items()}
        out[row["id"]] = Case(row["id"], row["what"], row["kind"], entries, row)
    return out


def params(prefix: str) -> list[tuple[str, str]]:
    """(case id, entry) pairs of the entries starting with ``prefix``."""
    return [(c.id, e) for c in cases().values() for e in c.entries if e.startswith(prefix)]


def ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{case}-{entry}" for case, entry in pairs]


# -- "writes nothing" ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryState:
    rows: dict[str, list[tuple[Any, ...]]]
    journal_ids: frozenset[int]


def registry_state(db: Path) -> RegistryState:
    """Every row of the registry's holders, cards and status events, and the journal's ids."""
    if not db.exists():
        return RegistryState({t: [] for t in REGISTRY_TABLES}, frozenset())
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        rows = {
            t: sorted(conn.execute(f"select * from {t}").fetchall()) if t in tables else []
            for t in REGISTRY_TABLES
        }
        journal = (
            frozenset(r[0] for r in conn.execute("select id from journal"))
            if "journal" in tables
            else frozenset()
        )
    return RegistryState(rows, journal)


def new_journal_results(db: Path, before: RegistryState) -> list[tuple[str, str | None]]:
    """(operation, result) of the journal rows (complete / resolve) added since ``before``."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select id, kind, entry_id, operation, result from journal").fetchall()
    operations = {row_id: operation for row_id, kind, _, operation, _ in rows if kind == "begin"}
    return [
        (str(operations.get(entry_id, "?")), result)
        for row_id, kind, entry_id, _, result in rows
        if row_id not in before.journal_ids and kind != "begin"
    ]


def assert_nothing_written(
    where: str, card: CardOS | None, card_before: dict[str, Any] | None, db: Path, before: RegistryState
) -> None:
    if card is not None:
        assert persistent(card) == card_before, f"{where}: the card was changed"
    after = registry_state(db)
    for table in REGISTRY_TABLES:
        assert after.rows[table] == before.rows[table], f"{where}: registry table {table} was changed"
    ok = [op for op, result in new_journal_results(db, before) if result == "ok" and op not in PRESENTATION]
    assert not ok, f"{where}: journal entries say ok: {ok}"

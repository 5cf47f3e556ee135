"""The card OS command table and life-cycle gates, loaded from data files."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from card_model.lifecycle import LifeCycle

__all__ = ["CommandDef", "Gate", "command_table", "gates"]


def _load(name: str) -> dict[str, Any]:
    text = resources.files("emulator.card_os").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True, slots=True)
class CommandDef:
    name: str
    cla: int
    ins: int
    sm: bool
    sm2: bool


@dataclass(frozen=True, slots=True)
class Gate:
    """What one life-cycle state lets through."""

    refuse: int
    allow: frozenset[str] | None
    deny: frozenset[str]
    read_record_files: frozenset[str] | None

    def permits(self, name: str) -> bool:
        if self.allow is not None:
            return name in self.allow
        return name not in self.deny


@cache
def command_table() -> dict[tuple[int, int], CommandDef]:
    out: dict[tuple[int, int], CommandDef] = {}
    for row in _load("commands.toml")["command"]:
        cla, ins = int(row["cla"], 16), int(row["ins"], 16)
        out[(cla, ins)] = CommandDef(
            row["name"], cla, ins, bool(row.get("sm", False)), bool(row.get("sm2", False))
        )
    return out


@cache
def gates() -> dict[LifeCycle, Gate]:
    out: dict[LifeCycle, Gate] = {}
    for code, row in _load("lifecycle.toml")["state"].items():
        allow = row.get("allow")
        files = row.get("read_record_files")
        out[LifeCycle(int(code, 16))] = Gate(
            refuse=int(row["refuse"], 16),
            allow=None if allow is None else frozenset(allow),
            deny=frozenset(row.get("deny", ())),
            read_record_files=None if files is None else frozenset(files),
        )
    return out

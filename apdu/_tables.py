"""Load the package's TOML data files once (importlib.resources).

This module depends on nothing else in the package so that ``errors`` and
``status`` can both use it without an import cycle.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["command_in_table", "load_table"]


@cache
def load_table(name: str) -> dict[str, Any]:
    """Parse ``apdu/data/<name>.toml`` (cached for the process lifetime)."""
    text = resources.files("apdu").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def _command_table(section: str) -> dict[int, frozenset[int]]:
    table: dict[str, list[str]] = load_table("commands")[section]
    return {int(ins, 16): frozenset(int(cla, 16) for cla in clas) for ins, clas in table.items()}


def command_in_table(section: str, cla: int, ins: int) -> bool:
    """Whether ``cla``/``ins`` is listed in ``data/commands.toml`` ``[section]``
    (INS -> the CLA values; the logical channel bits of ``cla`` are ignored)."""
    clas = _command_table(section).get(ins)
    return clas is not None and (cla & 0xFC) in clas

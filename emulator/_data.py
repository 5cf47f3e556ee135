"""Load the emulator's TOML data files (``emulator/data``) once each."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data", "profile_names"]


@cache
def load_data(name: str) -> dict[str, Any]:
    """The parsed ``emulator/data/<name>.toml`` (cached; do not mutate)."""
    text = resources.files("emulator").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def profile_names() -> tuple[str, ...]:
    """Names of the built-in card profiles (``card_model/data/profiles/*.toml``),
    newest generation first (``gen3``, ``gen2``, ``gen1``)."""
    folder = resources.files("card_model").joinpath("data", "profiles")
    names = [entry.name[: -len(".toml")] for entry in folder.iterdir() if entry.name.endswith(".toml")]
    return tuple(sorted(names, reverse=True))

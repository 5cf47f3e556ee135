"""Load the emulator's TOML data files (``emulator/data``) once each."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data"]


@cache
def load_data(name: str) -> dict[str, Any]:
    """The parsed ``emulator/data/<name>.toml`` (cached; do not mutate)."""
    text = resources.files("emulator").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)

"""Load the terminal's TOML data files once (importlib.resources)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data"]


@cache
def load_data(name: str) -> dict[str, Any]:
    """Parse ``terminal/data/<name>.toml`` (cached for the process lifetime)."""
    text = resources.files("terminal").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)

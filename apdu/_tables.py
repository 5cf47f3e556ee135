"""Load the package's TOML data files once (importlib.resources).

This module depends on nothing else in the package so that ``errors`` and
``status`` can both use it without an import cycle.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_table"]


@cache
def load_table(name: str) -> dict[str, Any]:
    """Parse ``apdu/data/<name>.toml`` (cached for the process lifetime)."""
    text = resources.files("apdu").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)

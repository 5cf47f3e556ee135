"""Load the benchmark's TOML data files once (importlib.resources)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data"]


@cache
def load_data(name: str) -> dict[str, Any]:
    """Parse ``terminal/bench/data/<name>.toml`` (cached for the process)."""
    text = resources.files("terminal.bench").joinpath("data", f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)

"""Load the service's TOML data files once (importlib.resources)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data", "read_asset"]


@cache
def load_data(name: str) -> dict[str, Any]:
    """Parse ``terminal/service/data/<name>.toml`` (cached)."""
    text = resources.files("terminal.service").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def read_asset(folder: str, name: str) -> bytes:
    """A static asset shipped in ``terminal/service/<folder>/``."""
    return resources.files("terminal.service").joinpath(folder, name).read_bytes()

"""Load card_model's TOML data files once (importlib.resources)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_data"]


@cache
def load_data(*parts: str) -> dict[str, Any]:
    """Parse ``card_model/data/<parts...>`` (cached for the process lifetime)."""
    text = resources.files("card_model").joinpath("data", *parts).read_text(encoding="utf-8")
    return tomllib.loads(text)

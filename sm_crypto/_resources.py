"""Loading of the package's data files (``sm_crypto/data/*.toml``)."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any


@functools.cache
def load_toml(name: str) -> dict[str, Any]:
    """Parse ``sm_crypto/data/<name>`` once and return the table."""
    text = resources.files("sm_crypto").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)

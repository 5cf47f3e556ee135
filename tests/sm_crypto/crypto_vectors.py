"""Shared helpers for the sm_crypto tests: vector files and the openssl CLI."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> dict[str, Any]:
    """Parse ``vectors/<name>``."""
    with (VECTORS / name).open("rb") as handle:
        return tomllib.load(handle)


def h(text: str) -> bytes:
    """Hex string from a vector file to bytes."""
    return bytes.fromhex(text)


def openssl(*args: str, data: bytes | None = None) -> bytes:
    """Run the ``openssl`` command line; fail the test on a non-zero exit."""
    result = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout

"""The PostgreSQL the registry tests run against (tests/registry, tests/terminal_registry).

$SSCARD_TEST_PG_URL if set; otherwise scripts/pg-up installs PostgreSQL from
Debian if needed and starts a throwaway cluster on 127.0.0.1 (or finds the
one it started before), and scripts/pg-down stops it at the end if this call
started it. Nothing is skipped when PostgreSQL is missing: it is started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
PG_UP_TIMEOUT_S = 900  # an apt-get install of PostgreSQL on a fresh machine included


@contextmanager
def cluster_url() -> Iterator[str]:
    """The URL (postgresql+psycopg://...) of the test cluster, for the block's duration."""
    preset = os.environ.get("SSCARD_TEST_PG_URL")
    if preset:
        yield preset.replace("postgresql://", "postgresql+psycopg://", 1)
        return
    up = subprocess.run(
        [sys.executable, str(SCRIPTS / "pg-up"), "--json"],
        capture_output=True,
        text=True,
        timeout=PG_UP_TIMEOUT_S,
    )
    if up.returncode != 0:
        pytest.fail(f"scripts/pg-up failed ({up.returncode}):\n{up.stderr}")
    info = json.loads(up.stdout.strip().splitlines()[-1])
    try:
        yield str(info["url"])
    finally:
        if info["started"]:
            subprocess.run([sys.executable, str(SCRIPTS / "pg-down")], capture_output=True, timeout=120)

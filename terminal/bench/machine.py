"""What the figures were measured on: CPU, cores, kernel, Python, libraries, load."""

from __future__ import annotations

import os
import platform
import re
import ssl
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["load_average", "machine_info"]

_PACKAGES = ("pyscard", "cryptography", "gmssl", "sqlalchemy", "psycopg", "uvicorn", "fastapi", "websockets")


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def _memory_total_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else None


def _pcscd_version() -> str | None:
    for path in ("/usr/sbin/pcscd", "/usr/bin/pcscd"):
        if Path(path).exists():
            try:
                out = subprocess.run(
                    [path, "--version"], capture_output=True, text=True, timeout=5, check=False
                )
            except (OSError, subprocess.SubprocessError):
                return None
            match = re.search(r"version (\d[\w.]*\d)", out.stdout + out.stderr)
            return match.group(1) if match else None
    return None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of the machine (without the load averages)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": _memory_total_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "openssl": ssl.OPENSSL_VERSION,
        "pcscd": _pcscd_version(),
        "packages": _versions(),
    }

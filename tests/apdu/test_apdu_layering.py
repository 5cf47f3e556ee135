"""Layering rules: pyscard is imported by apdu/pcsc.py only, and importing the
rest of apdu does not pull it in."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "apdu",
    "sm_crypto",
    "card_model",
    "emulator",
    "terminal",
    "scripts",
    "tests",
)


def imports_pyscard(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "smartcard" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "smartcard":
            return True
    return False


def test_only_apdu_pcsc_imports_pyscard() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in sorted((ROOT / package).rglob("*.py"))
        if imports_pyscard(path)
    ]
    assert offenders == ["apdu/pcsc.py"]


def test_importing_apdu_without_pcsc_does_not_load_pyscard() -> None:
    code = (
        "import sys, apdu.errors, apdu.status, apdu.command, apdu.response, apdu.protocol,"
        " apdu.tlv, apdu.elements, apdu.sm, apdu.trace, apdu.inprocess, apdu.transport;"
        " print('smartcard' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"

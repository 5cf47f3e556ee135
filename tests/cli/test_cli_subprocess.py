"""The installed console script `.venv/bin/sscard` as a real process: the demo,
--pin-stdin, JSON-only stdout, exit codes, PINs never in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_helpers import DEMO_PINS, INITIAL_PIN, NEW_PIN, OTHER_SLOT, SPARE_SLOT, WRONG_PIN, assert_no_pin

SSCARD = Path(sys.executable).with_name("sscard")


def sscard(
    args: Sequence[str], *, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SSCARD), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_console_script_is_installed() -> None:
    assert SSCARD.exists(), (
        f"{SSCARD} missing: pip install -e . --no-deps --config-settings editable_mode=compat"
    )
    result = sscard(["--help"])
    assert result.returncode == 0
    assert "demo" in result.stdout and "readers" in result.stdout


def test_demo_as_a_process(pcsc_stack: object) -> None:
    result = sscard(["demo", "--slot", str(OTHER_SLOT), "--psam-slot", str(SPARE_SLOT)])
    assert result.returncode == 0, result.stderr
    assert "演示完成" in result.stdout
    assert result.stdout.count("✓") == 17
    assert_no_pin([result.stdout, result.stderr], DEMO_PINS)


def test_pin_stdin_and_json_stdout(card: str, psam: str) -> None:
    wrong = sscard(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{WRONG_PIN}\n")
    assert wrong.returncode == 6
    assert "还可尝试2次" in wrong.stderr
    change = sscard(
        ["--json", "--reader", card, "pin", "change", "--pin-stdin"],
        input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n",
    )
    assert change.returncode == 0, change.stderr
    assert json.loads(change.stdout)["state"] == "ok"
    outputs = [p.stdout for p in (wrong, change)] + [p.stderr for p in (wrong, change)]
    assert_no_pin(outputs, [INITIAL_PIN, NEW_PIN, WRONG_PIN])


def test_pcscd_unreachable_exits_3(tmp_path: Path) -> None:
    result = sscard(["--json", "readers"], env={"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")})
    assert result.returncode == 3
    assert json.loads(result.stderr.strip().splitlines()[-1])["error"] == "pcsc_unavailable"
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "code"), [(["no-such-command"], 2), (["read", "everything"], 2)])
def test_usage_errors_exit_2(args: list[str], code: int) -> None:
    assert sscard(args).returncode == code

"""The secrets sweep's checker (tests/secrets_sweep.py): it finds each kind
of secret where it may leak, never prints one, and fails a pytest run,
even for a leak in the last session fixture's teardown (it runs last)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import secrets_sweep
from secrets_sweep import Collectors, Secret, Sweep, run_secrets

from apdu.command import CommandApdu
from apdu.elements import encode_pin
from apdu.errors import InvalidInput
from apdu.trace import Tracer
from card_model.demo import demo_key_set
from terminal.journal_hook import MemoryJournal

# Values of this file only (the run's own sweep must not see a leak in these tests):
PIN = "593142"
SSN = "110108198007043213"
KEY = bytes(range(16)).hex()
RUN_PIN = "211008"  # a secret of the run (the demo holder's initial PIN), leaked in a child pytest
SECRETS = [Secret("pin", "test PIN", PIN), Secret("ssn", "test SSN", SSN), Secret("key", "test key", KEY)]
TESTS_DIR = Path(secrets_sweep.__file__).resolve().parent


def _found(*texts: str) -> list[str]:
    sweep = Sweep(SECRETS)
    for text in texts:
        sweep.add("log", text)
    findings = sweep.findings()
    for finding in findings:
        assert PIN not in finding.line() and SSN not in finding.line() and KEY not in finding.line().lower()
    return [f.kind for f in findings]


def test_each_kind_is_found_and_never_repeated() -> None:
    assert _found(f"verify with {PIN} failed") == ["pin"]
    assert _found(f"holder {SSN}") == ["ssn"]
    assert _found(f"key {KEY.upper()}", f"key {KEY}") == ["key", "key"]
    assert _found(f">> 0020000103{PIN}") == ["pin"]  # a PIN block in an APDU trace
    assert _found(f">> 805E01010712100800FF{PIN}") == ["pin"]  # the new PIN of a CHANGE PIN


def test_no_false_alarm_inside_longer_numbers() -> None:
    assert (
        _found(f"card id 1101{PIN}0D1560000", "masked 110102************", ">> 0020000103**(3 bytes)**") == []
    )


def test_the_run_secrets_cover_the_tests() -> None:
    secrets = run_secrets()
    values = {(s.kind, s.value.upper()) for s in secrets}
    assert ("ssn", "110102197305211008") in values and ("pin", RUN_PIN) in values  # demo holder, initial PIN
    assert ("pin", "135790") in values and ("pin", "975318") in values  # tear campaign and service PINs
    masters = demo_key_set().masters
    assert all(("key", value.hex().upper()) in values for value in masters.values())
    assert not {PIN, SSN, KEY.upper()} & {s.value.upper() for s in secrets}


def test_collectors_see_logs_traces_journal_and_exceptions() -> None:
    sweep = Sweep(SECRETS)
    collectors = Collectors(sweep)
    collectors.install()
    try:
        logging.getLogger("sscard.test").warning("leak %s", PIN)
        tracer = Tracer()
        tracer.command(CommandApdu(0x00, 0x20, 0x00, 0x01, encode_pin(PIN), sensitive=True))
        journal = MemoryJournal()
        entry = journal.begin("card.write", card_id="00", details={"file": "EF07"})
        journal.mark_torn(entry, f"note with {SSN}")
        InvalidInput(f"bad value {KEY}", kind="chars")
    finally:
        collectors.uninstall()
    findings = sweep.findings()
    assert sorted({f.source for f in findings}) == ["exception", "journal", "log"]  # the trace was redacted
    assert sweep.counts["trace"] == 1
    logging.getLogger("sscard.test").warning("after %s", PIN)
    assert len(sweep.findings()) == len(findings)  # uninstalled: nothing more collected


CONFTEST = """
import logging
import pytest
from secrets_sweep import pytest_configure, pytest_runtest_setup, pytest_sessionfinish  # noqa: F401

@pytest.fixture(scope="session")
def late():
    yield
    if {leak!r}:
        logging.getLogger("sscard.late").debug("teardown with PIN %s", {pin!r})
"""
TEST = """
def test_nothing_wrong(late):
    assert True
"""


def _run_pytest(folder: Path, leak: bool) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "conftest.py").write_text(textwrap.dedent(CONFTEST.format(leak=leak, pin=RUN_PIN)))
    (folder / "test_inner.py").write_text(TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(TESTS_DIR.parent)])}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(folder),
            str(folder),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_leak_in_the_last_teardown_fails_the_run(tmp_path: Path) -> None:
    """A child pytest whose only test passes, with a PIN logged while the last
    session fixture is torn down: the sweep runs after it and fails the run."""
    leaked = _run_pytest(tmp_path / "leaked", leak=True)
    assert leaked.returncode == 1, leaked.stdout + leaked.stderr
    assert "1 passed" in leaked.stdout and "secrets sweep: FAILED, 1 secret(s) found" in leaked.stdout
    assert "in log" in leaked.stdout and RUN_PIN not in leaked.stdout + leaked.stderr

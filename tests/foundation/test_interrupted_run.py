"""A test run killed half-way leaves no pcscd that the next run trips over.

End to end, in a private namespace (``scripts/isolated``: its own pid
namespace, /run/pcscd and vpcd ports, so the shared stack of this run is
never touched): a pytest run that uses the project's ``pcsc_stack`` fixture
starts pcscd and is killed with SIGKILL; the next pytest run must find the
readers, take over the orphaned pcscd and stop it at its end.  Then a run is
killed again and ``scripts/pcscd-down`` clears its orphan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The project's own ``pcsc_stack`` fixture, taken from tests/conftest.py (loaded under
# another module name, with tests/ on the path for its imports).
CONFTEST = """
import importlib.util
import os
import sys

_tests = os.path.join(os.environ["SSCARD_ROOT"], "tests")
sys.path.insert(0, _tests)
_spec = importlib.util.spec_from_file_location("sscard_tests_conftest", os.path.join(_tests, "conftest.py"))
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
pcsc_stack = _module.pcsc_stack
"""

KILLED = """
import os
import signal


def test_killed_half_way(pcsc_stack):
    assert pcsc_stack.started
    os.kill(os.getpid(), signal.SIGKILL)
"""

NEXT = """
from apdu.pcsc import list_readers


def test_next_run_finds_the_readers(pcsc_stack):
    assert pcsc_stack.started  # the orphan was taken over, so this run stops it
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01"} <= set(list_readers())
"""

# Runs inside the namespace; prints one JSON object as its last line.
DRIVER = """
import json, os, subprocess, sys
from pathlib import Path

here = Path(sys.argv[1])
root = sys.argv[2]
env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "SSCARD_ROOT": root}


def live_pcscd():
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        count += comm == "pcscd" and state != "Z"
    return count


def pytest(name):
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(here)]
    cmd.append(str(here / name))
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)


out = {}
first = pytest("test_killed.py")
out["killed_status"] = first.returncode
out["after_kill"] = live_pcscd()
second = pytest("test_next.py")
out["next_status"] = second.returncode
out["next_output"] = second.stdout[-2000:]
out["killed_output"] = first.stdout[-3000:] + first.stderr[-2000:]
out["after_next"] = live_pcscd()
third = pytest("test_killed.py")
out["killed_again_status"] = third.returncode
out["after_second_kill"] = live_pcscd()
down = subprocess.run([root + "/scripts/pcscd-down"], capture_output=True, text=True, timeout=60)
out["down"] = down.stdout.strip()
out["after_down"] = live_pcscd()
print(json.dumps(out))
"""


def test_killed_run_leaves_nothing_the_next_run_trips_over(tmp_path: Path) -> None:
    (tmp_path / "test_killed.py").write_text(KILLED, encoding="utf-8")
    (tmp_path / "test_next.py").write_text(NEXT, encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    driver = [sys.executable, str(tmp_path / "driver.py"), str(tmp_path), str(ROOT)]
    result = subprocess.run(
        [str(ROOT / "scripts" / "isolated"), *driver],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["killed_status"] == -9, out["killed_output"]
    assert out["after_kill"] == 1  # the killed run's pcscd is still there ...
    assert out["next_status"] == 0, out["next_output"]
    assert out["after_next"] == 0  # ... and the next run used it and stopped it
    assert out["killed_again_status"] == -9
    assert out["after_second_kill"] == 1
    assert out["down"] == "pcscd stopped"  # scripts/pcscd-down clears an orphan too
    assert out["after_down"] == 0

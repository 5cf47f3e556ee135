"""scripts/setup, scripts/test and .ci/run, run for real in a sandbox copy of the repository.

The sandbox holds copies of the scripts under test; only the programs they
would use to change the machine are replaced (``dpkg-query``, ``id`` and
``sudo`` for setup, so no package is installed and /usr/sbin is never
touched; the venv's ``python`` for setup's pip calls).  scripts/test and
.ci/run run the real pytest of the project's .venv on a tiny test tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_DPKG_QUERY = """#!/bin/sh
# dpkg-query -W -f=FORMAT PKG...: every package installed except $FAKE_MISSING
# ("deinstall" state) and $FAKE_UNKNOWN (not known: message on stderr, status 1).
shift 2
status=0
for pkg in "$@"; do
    case " $FAKE_UNKNOWN " in
        *" $pkg "*) echo "dpkg-query: no packages found matching $pkg" >&2; status=1; continue;;
    esac
    case " $FAKE_MISSING " in *" $pkg "*) echo "$pkg deinstall ok config-files"; continue;; esac
    echo "$pkg install ok installed"
done
exit $status
"""

FAKE_SUDO = """#!/bin/sh
printf "%s\\n" "sudo $*" >> "$CALLS"
"""

FAKE_ID = """#!/bin/sh
echo 1000
"""

FAKE_VENV_PYTHON = """#!/bin/sh
printf "%s\\n" "python $*" >> "$CALLS"
bin="$(dirname "$0")"
case "$*" in *"pip install -q -e"*) printf '#!/bin/sh\\n' > "$bin/sscard"; chmod +x "$bin/sscard";; esac
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def _setup_sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    (repo / "pyproject.toml").write_text('[project]\nname = "sandbox"\n', encoding="utf-8")
    _executable(repo / ".venv" / "bin" / "python", FAKE_VENV_PYTHON)
    fakes = tmp_path / "bin"
    _executable(fakes / "dpkg-query", FAKE_DPKG_QUERY)
    _executable(fakes / "sudo", FAKE_SUDO)
    _executable(fakes / "id", FAKE_ID)
    env = {
        **os.environ,
        "PATH": f"{fakes}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls.log"),
        "FAKE_MISSING": "",
        "FAKE_UNKNOWN": "",
    }
    return repo, env


def _run_setup(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(repo / "scripts" / "setup")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def _calls(env: dict[str, str]) -> list[str]:
    path = Path(env["CALLS"])
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_setup_second_run_changes_nothing(tmp_path: Path) -> None:
    repo, env = _setup_sandbox(tmp_path)
    first = _run_setup(repo, env)
    assert "Debian packages present" in first.stderr
    installs = [c for c in _calls(env) if "pip install -q -e" in c]
    assert len(installs) == 1 and f"{repo}[dev]" in installs[0]
    stamp = repo / ".venv" / ".sscard-installed"
    stamped = stamp.read_text(encoding="utf-8")

    calls_before = _calls(env)
    second = _run_setup(repo, env)
    assert "Debian packages present" in second.stderr
    assert "Python environment up to date" in second.stderr
    assert _calls(env) == calls_before  # no pip, no sudo, no apt
    assert stamp.read_text(encoding="utf-8") == stamped

    (repo / "pyproject.toml").write_text('[project]\nname = "sandbox"\nversion = "2"\n', encoding="utf-8")
    third = _run_setup(repo, env)
    assert "installing sscard" in third.stderr
    assert len([c for c in _calls(env) if "pip install -q -e" in c]) == 2


def test_setup_installs_only_the_missing_packages(tmp_path: Path) -> None:
    repo, env = _setup_sandbox(tmp_path)
    env["FAKE_MISSING"] = "opensc"
    env["FAKE_UNKNOWN"] = "vsmartcard-vpcd"
    result = _run_setup(repo, env)
    assert "installing Debian packages: vsmartcard-vpcd opensc" in result.stderr
    sudo = [c for c in _calls(env) if c.startswith("sudo ")]
    assert "sudo apt-get update -qq" in sudo
    assert "sudo apt-get install -y -qq --no-install-recommends vsmartcard-vpcd opensc" in sudo
    # A policy-rc.d keeps apt from starting pcscd / PostgreSQL; one already there is left in place.
    policy = [c for c in sudo if "policy-rc.d" in c]
    if Path("/usr/sbin/policy-rc.d").exists():
        assert policy == []
    else:
        assert policy[0].startswith("sudo sh -c") and policy[-1] == "sudo rm -f /usr/sbin/policy-rc.d"


# -- scripts/test and .ci/run -------------------------------------------------------------


def _test_sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    for script in ("scripts/test", ".ci/run"):
        (repo / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / script, repo / script)
    _executable(repo / "scripts" / "setup", '#!/bin/sh\necho "setup: sandbox" >&2\n')
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (repo / "tests").mkdir()
    (repo / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-p no:cacheprovider"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return repo, env


def _ci(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(repo / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_ci_runs_setup_then_the_suite_and_fails_on_no_tests(tmp_path: Path) -> None:
    repo, env = _test_sandbox(tmp_path)
    empty = _ci(repo, env)
    assert empty.returncode == 5
    assert "setup: sandbox" in empty.stderr
    assert "collected no tests; that is a failure" in empty.stderr


@pytest.mark.parametrize(("body", "status"), [("assert 1 + 1 == 3", 1), ("assert 1 + 1 == 2", 0)])
def test_ci_status_is_the_suite_status(tmp_path: Path, body: str, status: int) -> None:
    repo, env = _test_sandbox(tmp_path)
    (repo / "tests" / "test_one.py").write_text(f"def test_one() -> None:\n    {body}\n", encoding="utf-8")
    result = _ci(repo, env)
    assert result.returncode == status, result.stdout + result.stderr
    assert ("1 passed" if status == 0 else "1 failed") in result.stdout


def test_ci_run_is_the_readme_test_command() -> None:
    """.ci/run hides nothing: it is `scripts/test -q`, the README's second command."""
    lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == "exec scripts/test -q"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]


# -- pyproject.toml ------------------------------------------------------------------------


def test_pyproject_declares_the_distribution_and_its_tooling() -> None:
    import re
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["name"] == "sscard"
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"]["sscard"] == "terminal.cli:main"
    # Runtime dependencies are pinned to ranges: a lower and an upper bound (or ==).
    for requirement in project["dependencies"]:
        spec = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        assert ("==" in requirement) or (">=" in requirement and "<" in requirement.replace("<=", "")), (
            f"{spec}: not pinned to a range"
        )
    names = {re.split(r"[\[<>=!~ ]", r, maxsplit=1)[0] for r in project["dependencies"]}
    assert {"pyscard", "cryptography", "construct", "click"} <= names
    dev = {re.split(r"[\[<>=!~ ]", r, maxsplit=1)[0] for r in project["optional-dependencies"]["dev"]}
    assert {"pytest", "hypothesis", "ruff", "mypy"} <= dev
    assert {"ruff", "mypy", "pytest"} <= set(meta["tool"])


def test_console_script_is_installed() -> None:
    sscard = str(ROOT / ".venv" / "bin" / "sscard")
    result = subprocess.run([sscard, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()

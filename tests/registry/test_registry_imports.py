"""The registry package is light to import: card flows and `sscard --help`
(also of the registry's own commands) do not load SQLAlchemy, Alembic or
psycopg until a database is opened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import terminal.registry as registry_package

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "alembic", "psycopg")


def heavy_modules_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the heavy database modules it loaded."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_card_flows_and_the_registry_errors_do_not_load_the_database_toolkit() -> None:
    code = (
        "import terminal.journal_hook, terminal.session, terminal.flows, terminal.registry.errors\n"
        "from terminal.registry import Actor, Decision, rules, catalog\n"
        "from terminal.registry.sanitize import mask_ssn"
    )
    assert heavy_modules_after(code) == []


@pytest.mark.parametrize("command", [["--help"], ["registry", "--help"], ["journal", "list", "--help"]])
def test_sscard_help_does_not_load_the_database_toolkit(command: list[str]) -> None:
    code = (
        f"sys.argv = ['sscard', *{command!r}]\n"
        "from terminal.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert heavy_modules_after(code) == []


def test_opening_a_registry_loads_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code = f"from terminal.registry import open_registry\nopen_registry({url!r})[0].close()"
    assert "sqlalchemy" in heavy_modules_after(code)


def test_lazy_names_resolve_to_their_modules() -> None:
    from terminal.registry.db import resolve_url
    from terminal.registry.journal import Journal
    from terminal.registry.models import Actor
    from terminal.registry.registry import Registry

    assert registry_package.Registry is Registry
    assert registry_package.Journal is Journal
    assert registry_package.Actor is Actor
    assert registry_package.resolve_url is resolve_url
    assert set(registry_package.__all__) <= set(dir(registry_package))
    unknown = "NoSuchName"
    with pytest.raises(AttributeError, match=unknown):
        getattr(registry_package, unknown)

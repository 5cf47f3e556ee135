"""The least privileges a fleet's terminal role needs on a PostgreSQL registry.

The schema's owner creates and migrates it (the first `open_registry` with
the owner's URL, or the DDL of `alembic upgrade --sql` run by a DBA); every
terminal then connects with a role granted only these statements
(`terminal/registry/data/fleet.toml`): no DELETE, no TRUNCATE, no DDL, so the
journal's append-only triggers cannot be dropped from a terminal.
"""

from __future__ import annotations

import re

from terminal.registry import catalog
from terminal.registry.errors import RegistryInputError

__all__ = ["terminal_grants"]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def terminal_grants(role: str, schema: str = "public") -> list[str]:
    """The GRANT statements for `role` on the registry in `schema`."""
    for what, value in (("role", role), ("schema", schema)):
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise RegistryInputError(
                f"{what}: a lower-case SQL identifier expected",
                detail_zh=f"{'角色' if what == 'role' else '模式'}名须为小写 SQL 标识符",
            )
    return [statement.format(role=role, schema=schema) for statement in catalog.fleet_grants()]

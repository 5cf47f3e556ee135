"""Alembic environment for the registry. Run through terminal.registry.db.migrate,
which hands over an open connection (already inside a locked transaction)."""

from __future__ import annotations

from alembic import context

from terminal.registry.schema import metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()

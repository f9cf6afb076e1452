"""Alembic environment for fast-agent-db.

Two ways in:
* `fast-agent-db db upgrade` (and the library's `MigrationRunner`) hands over an open
  connection in `config.attributes["connection"]`;
* the `alembic` command in a checkout (alembic.ini) builds an engine from
  `-x database_url=...`, else FAST_AGENT_DATABASE_URL, else ./fastagent.db.

Either way the migrations run in one transaction, on SQLite with foreign keys unenforced and
checked before it commits (see `mcp_agent.db.migration_runner.foreign_keys_unenforced`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.migration_runner import (
    check_foreign_keys,
    foreign_keys_unenforced,
    include_name,
    remove_stale_batch_copies,
)
from mcp_agent.db.models import VERSION_TABLE, Base
from mcp_agent.db.urls import resolve_database_url, to_async_url

config = context.config


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        **options,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        remove_stale_batch_copies(connection)
        context.run_migrations()
        check_foreign_keys(connection)


def _url_from_command_line() -> str:
    return context.get_x_argument(as_dictionary=True).get("database_url") or resolve_database_url()


if context.is_offline_mode():
    # `alembic upgrade head --sql`: print the DDL instead of running it.
    _configure(url=to_async_url(_url_from_command_line()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = create_sync_database_engine(_url_from_command_line())
    try:
        with engine.connect() as connection:
            with foreign_keys_unenforced(connection), connection.begin():
                _run(connection)
    finally:
        engine.dispose()

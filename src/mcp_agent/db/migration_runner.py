"""Run the Alembic migrations shipped in the package, without an alembic.ini.

The migrations live in `migrations/` at the top of the source tree; the wheel carries them as
`mcp_agent/db/migrations`, so an installed package with no checkout can upgrade a database.
Alembic is synchronous, so the runner is too: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from mcp_agent.db.engine import create_sync_database_engine, describe_connection_error
from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.models import VERSION_TABLE, Base

_T = TypeVar("_T")


def migrations_directory() -> Path:
    """Where the migration scripts are: inside the installed package, or the checkout's."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "migrations", package_dir.parents[2] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FastAgentDbError(
        f"The migration scripts are missing: looked in {package_dir / 'migrations'} and "
        f"{package_dir.parents[2] / 'migrations'}. Reinstall fast-agent-db."
    )


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The revision this code needs (the single head of the linear chain)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise FastAgentDbError("The migration chain has no head revision.")
    return head


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Compare only our own tables, and not the partitions of the event log."""
    if type_ == "table" and name is not None:
        return name.startswith("fa_") and not name.startswith("fa_events_")
    return True


class MigrationRunner:
    """Upgrade, downgrade and inspect one database's schema."""

    def __init__(self, raw_url: str) -> None:
        self._engine = create_sync_database_engine(raw_url)

    def _with_connection(self, work: Callable[[Connection], _T], *, transaction: bool) -> _T:
        try:
            connection = self._engine.connect()
        except (OperationalError, DBAPIError) as error:
            raise describe_connection_error(self._engine.url, error) from None
        with connection:
            if not transaction:
                return work(connection)
            with connection.begin():
                return work(connection)

    def upgrade(self, revision: str = "head") -> None:
        """Upgrade to `revision` in one transaction (DDL is transactional on both backends)."""
        self._run_command(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Downgrade to `revision` (`base` removes every fast-agent-db table)."""
        self._run_command(command.downgrade, revision)

    def _run_command(self, alembic_command: Callable[[Config, str], None], revision: str) -> None:
        def run(connection: Connection) -> None:
            try:
                alembic_command(alembic_config(connection), revision)
            except CommandError as error:
                raise FastAgentDbError(f"Migration to {revision!r} failed: {error}") from None

        self._with_connection(run, transaction=True)

    def current(self) -> str | None:
        """The database's revision, or None for a database never migrated."""
        return self._with_connection(
            lambda connection: MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}
            ).get_current_revision(),
            transaction=False,
        )

    def drift(self) -> list[Any]:
        """Differences between the migrated schema and the models (empty when they agree)."""

        def compare(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection,
                opts={
                    "version_table": VERSION_TABLE,
                    "compare_type": True,
                    "include_name": include_name,
                },
            )
            return list(compare_metadata(context, Base.metadata))

        return self._with_connection(compare, transaction=False)

    def dispose(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> MigrationRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

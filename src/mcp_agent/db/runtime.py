"""DatabaseRuntime: the process's engine and session factory, opened on a current schema."""

from __future__ import annotations

import asyncio
from typing import Self

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mcp_agent.db.engine import (
    check_connection,
    create_async_database_engine,
    describe_connection_error,
)
from mcp_agent.db.errors import SchemaOutOfDateError
from mcp_agent.db.models import VERSION_TABLE
from mcp_agent.db.urls import redact_url, resolve_database_url


class DatabaseRuntime:
    """Owns one `AsyncEngine` and the `async_sessionmaker` every store uses.

    Stores open a short session per operation (`async with runtime.sessions.begin() as s:`);
    nothing holds a session across operations or tasks.
    """

    def __init__(self, engine: AsyncEngine, *, raw_url: str) -> None:
        self.engine = engine
        self.raw_url = raw_url
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            engine, expire_on_commit=False
        )

    @classmethod
    async def open(cls, database_url: str | None = None, *, check_schema: bool = True) -> Self:
        """Connect to `database_url` (or the configured default) and check its schema.

        Raises:
            DatabaseUrlError: the URL is malformed or names an unsupported backend.
            DatabaseUnavailableError: the database cannot be reached.
            SchemaOutOfDateError: the schema is not at this code's revision.
        """
        raw_url = resolve_database_url(database_url)
        engine = create_async_database_engine(raw_url)
        runtime = cls(engine, raw_url=raw_url)
        try:
            await check_connection(engine)
            if check_schema:
                await runtime.ensure_schema_current()
        except BaseException:
            await engine.dispose()
            raise
        return runtime

    @property
    def display_url(self) -> str:
        return redact_url(self.raw_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def schema_revision(self) -> str | None:
        """The revision recorded in the database, or None when it was never migrated."""
        try:
            async with self.engine.connect() as connection:
                result = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
                return result.scalar_one_or_none()
        except (OperationalError, ProgrammingError) as error:
            if "no such table" in str(error) or "does not exist" in str(error):
                return None
            raise describe_connection_error(self.engine.url, error) from None
        except DBAPIError as error:
            raise describe_connection_error(self.engine.url, error) from None

    async def ensure_schema_current(self) -> None:
        from mcp_agent.db.migration_runner import head_revision

        required = await asyncio.to_thread(head_revision)
        current = await self.schema_revision()
        if current == required:
            return
        state = "has no fast-agent-db schema yet" if current is None else f"is at {current}"
        raise SchemaOutOfDateError(
            f"The database {self.display_url} {state}; this fast-agent-db needs schema "
            f"{required}. Run: fast-agent-db db upgrade --database-url '{self.display_url}'",
            current=current,
            required=required,
        )

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

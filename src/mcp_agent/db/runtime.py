"""DatabaseRuntime: the process's engine and session factory, opened on a current schema."""

from __future__ import annotations

import asyncio
import os
from typing import Self

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mcp_agent.db.engine import (
    PING_AFTER_IDLE_S,
    check_connection,
    create_async_database_engine,
    describe_connection_error,
    prepare_sqlite_file,
)
from mcp_agent.db.errors import SchemaOutOfDateError
from mcp_agent.db.models import VERSION_TABLE
from mcp_agent.db.schema_head import SCHEMA_HEAD
from mcp_agent.db.urls import (
    DATABASE_URL_ENV,
    is_secret_parameter,
    is_sqlite,
    parse_url,
    redact_url,
    resolve_database_url,
    sqlite_file,
    to_async_url,
)
from mcp_agent.db.write_pool import PostgresWritePool, write_pool_size

#: Stands in for the password in a suggested command; the user substitutes it.
PASSWORD_PLACEHOLDER = "<password>"
#: Marks where placeholders go while the URL is rendered (which would percent-encode `<>`).
_PLACEHOLDER_SENTINEL = "FASTAGENTDBPLACEHOLDER"
#: How many of a database's other tables an error message names.
TABLES_NAMED_IN_MESSAGES = 5


def _shell_quoted(argument: str) -> str:
    """`argument` in single quotes for a POSIX shell, so `?` and `&` in URLs survive."""
    return "'" + argument.replace("'", "'\"'\"'") + "'"


def how_to_run_db_upgrade(raw_url: str) -> str:
    """How to run `fast-agent-db db upgrade` on `raw_url`, as the end of a sentence.

    No secret appears, and neither does `***`, which cannot be run: a URL taken from
    FAST_AGENT_DATABASE_URL is not repeated (the command reads the same variable), and a URL
    with a password or a secret query parameter gets placeholders the user replaces.
    """
    if raw_url.strip() == os.environ.get(DATABASE_URL_ENV, "").strip():
        return f"run: fast-agent-db db upgrade (it reads {DATABASE_URL_ENV}, as this run did)"
    url = to_async_url(raw_url)
    secret_parameters = [name for name in url.query if is_secret_parameter(name)]
    if url.password or secret_parameters:
        typed = parse_url(raw_url.strip() if "://" in raw_url else f"sqlite:///{raw_url.strip()}")
        # Numbered sentinels, so that `pass` is not found inside `password`'s.
        placeholders = {
            f"{_PLACEHOLDER_SENTINEL}{number}Q": f"<{name}>"
            for number, name in enumerate(secret_parameters)
        }
        sentinel_of = dict(zip(secret_parameters, placeholders, strict=True))
        password_sentinel = f"{_PLACEHOLDER_SENTINEL}PQ"
        with_sentinels = typed.set(
            password=password_sentinel if typed.password else None,
            query={name: sentinel_of.get(name, value) for name, value in typed.query.items()},
        )
        shown = with_sentinels.render_as_string(hide_password=False)
        shown = shown.replace(password_sentinel, PASSWORD_PLACEHOLDER)
        for sentinel, placeholder in placeholders.items():
            shown = shown.replace(sentinel, placeholder)
        named = [PASSWORD_PLACEHOLDER] if typed.password else []
        named = list(dict.fromkeys([*named, *placeholders.values()]))
        what = "the database password" if named == [PASSWORD_PLACEHOLDER] else "the real values"
        return (
            f"run, with {what} in place of {', '.join(named)}: "
            f"fast-agent-db db upgrade --database-url {_shell_quoted(shown)}"
        )
    shown = raw_url.strip()
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.is_absolute() and not url.query:
        # A relative path names a different file from another directory.
        shown = f"sqlite:///{path.absolute()}"
    return f"run: fast-agent-db db upgrade --database-url {_shell_quoted(shown)}"


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
        #: PostgreSQL: the write path's psycopg pool (opened on first use); None on SQLite.
        self.write_pool: PostgresWritePool | None = None
        if engine.dialect.name == "postgresql":
            self.write_pool = PostgresWritePool(
                engine, max_size=write_pool_size(), ping_after_idle_s=PING_AFTER_IDLE_S
            )

    @classmethod
    async def open(
        cls,
        database_url: str | None = None,
        *,
        check_schema: bool = True,
        create_if_empty: bool = True,
    ) -> Self:
        """Connect to `database_url` (or the configured default) and check its schema.

        A missing SQLite file is created (0600). With `create_if_empty`, a database with no
        tables at all gets the current schema from the migrations first, so a run on a fresh
        database just works; callers that must not create anything use `open_existing`.

        Raises:
            DatabaseUrlError: the URL is malformed or names an unsupported backend.
            DatabaseUnavailableError: the database cannot be reached.
            SchemaOutOfDateError: the schema is not at this code's revision.
        """
        return await cls._open(
            database_url, check_schema=check_schema, create_if_empty=create_if_empty, create=True
        )

    @classmethod
    async def open_existing(
        cls, database_url: str | None = None, *, check_schema: bool = True
    ) -> Self:
        """Connect to a database that exists already, creating nothing: no SQLite file (a
        mistyped path is an error naming it, and no empty file is left behind), no schema.

        For commands that only read, or change only what is there (delete, prune).

        Raises:
            DatabaseUrlError: the URL is malformed or names an unsupported backend.
            DatabaseUnavailableError: the database cannot be reached, or its file is missing.
            SchemaOutOfDateError: the schema is not at this code's revision, or absent.
        """
        return await cls._open(
            database_url, check_schema=check_schema, create_if_empty=False, create=False
        )

    @classmethod
    async def _open(
        cls,
        database_url: str | None,
        *,
        check_schema: bool,
        create_if_empty: bool,
        create: bool,
    ) -> Self:
        raw_url = resolve_database_url(database_url)
        await asyncio.to_thread(prepare_sqlite_file, raw_url, create=create)
        engine = create_async_database_engine(raw_url, create_file=create)
        try:
            runtime = cls(engine, raw_url=raw_url)
        except BaseException:
            await engine.dispose()
            raise
        try:
            await check_connection(engine)
            if check_schema:
                await runtime.ensure_schema_current(create_if_empty=create_if_empty)
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

    async def ensure_schema_current(self, *, create_if_empty: bool = False) -> None:
        """Return when the schema is at this code's revision, creating it on an empty database
        if asked; otherwise raise SchemaOutOfDateError saying why and what to do."""
        # The head known without Alembic, which is only loaded when a schema is changed.
        required = SCHEMA_HEAD
        current = await self.schema_revision()
        if current == required:
            return
        if current is None and create_if_empty:
            current = await self._create_schema_if_empty()
            if current == required:
                return
        raise await self._schema_error(current, required)

    async def _create_schema_if_empty(self) -> str | None:
        """Run the migrations to head if the database has no tables; its revision after."""
        from mcp_agent.db.migration_runner import MigrationRunner, create_schema_if_empty_on

        if is_sqlite(self.engine.url) and sqlite_file(self.engine.url) is None:
            # An in-memory database exists only in this engine's one connection (another
            # engine would get its own, empty one), so the migrations run on it through the
            # event loop, Alembic's reading of its scripts included: the one place blocking
            # file reads reach the loop, for a database that lives only as long as this
            # process. Nothing else can reach it, so it needs no lock either.
            async with self.engine.begin() as connection:
                return await connection.run_sync(create_schema_if_empty_on)

        def create() -> str | None:
            with MigrationRunner(self.raw_url) as runner:
                return runner.create_schema_if_empty()

        return await asyncio.to_thread(create)

    async def _schema_error(self, current: str | None, required: str) -> SchemaOutOfDateError:
        from mcp_agent.db.migration_runner import (
            known_revisions,
            newer_schema_error,
            tables_besides_ours,
        )

        where = f"The database {self.display_url}"
        if current is not None:
            if current not in await asyncio.to_thread(known_revisions):
                return newer_schema_error(self.display_url, current)
            return SchemaOutOfDateError(
                f"{where} is at schema revision {current}; this fast-agent-db needs {required}. "
                f"To upgrade it, {how_to_run_db_upgrade(self.raw_url)}",
                current=current,
                required=required,
                state="older",
            )
        async with self.engine.connect() as connection:
            other_tables = await connection.run_sync(tables_besides_ours)
        if not other_tables:
            return SchemaOutOfDateError(
                f"{where} has no fast-agent-db schema yet. To create it, "
                f"{how_to_run_db_upgrade(self.raw_url)}",
                current=None,
                required=required,
                state="empty",
            )
        named = ", ".join(other_tables[:TABLES_NAMED_IN_MESSAGES])
        if len(other_tables) > TABLES_NAMED_IN_MESSAGES:
            named += f" and {len(other_tables) - TABLES_NAMED_IN_MESSAGES} more"
        return SchemaOutOfDateError(
            f"{where} has other tables ({named}) but no fast-agent-db schema, so it was left "
            "unchanged. To create the fast-agent-db tables in it alongside them, "
            f"{how_to_run_db_upgrade(self.raw_url)}; or use another database.",
            current=None,
            required=required,
            state="foreign",
        )

    async def close(self) -> None:
        try:
            if self.write_pool is not None:
                await self.write_pool.close()
        finally:
            await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

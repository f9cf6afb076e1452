"""Engines: one async engine per process for the stores, a sync one for migrations.

psycopg 3 serves PostgreSQL in both modes; aiosqlite (async) and the stdlib sqlite3 (sync)
serve SQLite. Every SQLite connection gets the pragmas below.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from mcp_agent.db.errors import DatabaseUnavailableError
from mcp_agent.db.urls import is_sqlite, redact_url, sqlite_file, to_async_url

#: How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long a PostgreSQL connection attempt may take before we call the server unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10
#: A pooled connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE_S = 5.0


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # Off by default in SQLite; our ON DELETE rules and references depend on it.
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL lets readers work while one process writes; NORMAL sync is durable under WAL
        # except for the last transactions on power loss, the usual trade for an embedded DB.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _check_sqlite_location(url: URL) -> None:
    path = sqlite_file(url)
    if path is not None and not path.expanduser().absolute().parent.is_dir():
        raise DatabaseUnavailableError(
            f"Cannot open the SQLite database {redact_url(url)}: "
            f"the directory {path.expanduser().absolute().parent} does not exist."
        )


def create_async_database_engine(raw_url: str, *, echo: bool = False) -> AsyncEngine:
    """The process's async engine for a user-supplied URL."""
    url = to_async_url(raw_url)
    if is_sqlite(url):
        _check_sqlite_location(url)
        options: dict[str, Any] = {}
        if sqlite_file(url) is None:
            # One shared connection, or every checkout would see its own empty database.
            options["poolclass"] = StaticPool
        engine = create_async_engine(url, echo=echo, **options)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url, echo=echo, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    )
    _ping_connections_after_idling(engine)
    return engine


def _ping_connections_after_idling(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    `pool_pre_ping` pings on every checkout: a round trip on every transaction of every agent
    call. A connection used moments ago is alive; one that idled may have been closed by a
    server restart, a failover or an idle timeout in between, so only those are pinged. A
    failed ping makes the pool replace the connection before anyone sees the error.
    """
    pool_events = engine.sync_engine.pool

    @event.listens_for(pool_events, "checkin")
    def _remember_when(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["fast_agent_db_checked_in"] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get("fast_agent_db_checked_in")
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure means: replace it
            raise DisconnectionError(f"idle connection is gone: {error}") from error
        if not alive:
            raise DisconnectionError("idle connection is gone")


#: Execution option of a sync SQLite connection: how its transactions begin ("DEFERRED", the
#: default, or "IMMEDIATE" to take the write lock up front).
SQLITE_BEGIN_MODE = "fast_agent_db_sqlite_begin"


def _leave_transactions_to_sqlalchemy(dbapi_connection: Any, _record: Any) -> None:
    # The stdlib driver opens a transaction only before INSERT/UPDATE/DELETE, so a migration's
    # CREATE TABLEs committed one by one: a failed or interrupted migration left half a schema,
    # and other processes could see it half made. With the driver's own handling off, the
    # `begin` listener below makes every transaction, DDL included, a real one.
    dbapi_connection.isolation_level = None


def _begin_sqlite_transaction(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_MODE, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_sync_database_engine(raw_url: str) -> Engine:
    """A sync engine for Alembic, whose migration machinery is synchronous.

    On SQLite its transactions are real ones, DDL included, so a migration is all or nothing.
    """
    url = to_async_url(raw_url)
    if is_sqlite(url):
        _check_sqlite_location(url)
        engine = create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        event.listen(engine, "connect", _leave_transactions_to_sqlalchemy)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    return create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


def describe_connection_error(url: URL, error: BaseException) -> DatabaseUnavailableError:
    """A clear, password-free error for a failed connection."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = reason[0] if reason else type(error).__name__
    if url.password:
        detail = detail.replace(str(url.password), "***")
    return DatabaseUnavailableError(f"Cannot connect to the database {redact_url(url)}: {detail}")


async def check_connection(engine: AsyncEngine) -> None:
    """Open one connection and run a trivial query, or raise DatabaseUnavailableError."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError, OSError) as error:
        raise describe_connection_error(engine.url, error) from None

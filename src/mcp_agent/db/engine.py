"""Engines: one async engine per process for the stores, a sync one for migrations.

psycopg 3 serves PostgreSQL in both modes; aiosqlite (async) and the stdlib sqlite3 (sync)
serve SQLite. Every SQLite connection gets the pragmas below. A SQLite file we create is
created 0600 first; an engine made with `create_file=False` never creates one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from mcp_agent.db.errors import (
    ConnectionLostError,
    DatabaseLockedError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    FastAgentDbError,
    InputError,
)
from mcp_agent.db.private_files import create_private_file
from mcp_agent.db.urls import is_sqlite, redact_secrets, redact_url, sqlite_file, to_async_url

#: How long a SQLite writer waits for another writer's lock before failing, unless
#: SQLITE_BUSY_TIMEOUT_ENV says otherwise.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Seconds (a decimal number) a SQLite writer waits for another writer's lock.
SQLITE_BUSY_TIMEOUT_ENV = "FAST_AGENT_DB_SQLITE_BUSY_TIMEOUT"
#: SQLite keeps the busy timeout in a C int of milliseconds.
_SQLITE_BUSY_TIMEOUT_MAX_MS = 2**31 - 1
#: How long a PostgreSQL connection attempt may take before we call the server unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10
#: A pooled connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE_S = 5.0


def sqlite_busy_timeout_ms() -> int:
    """The busy timeout: SQLITE_BUSY_TIMEOUT_ENV in seconds, else SQLITE_BUSY_TIMEOUT_MS.

    Raises:
        InputError: the variable is not a number of seconds SQLite can wait.
    """
    configured = os.environ.get(SQLITE_BUSY_TIMEOUT_ENV, "").strip()
    if not configured:
        return SQLITE_BUSY_TIMEOUT_MS
    try:
        milliseconds = round(float(configured) * 1000)
    except (ValueError, OverflowError):
        milliseconds = -1
    if not 0 <= milliseconds <= _SQLITE_BUSY_TIMEOUT_MAX_MS:
        raise InputError(
            SQLITE_BUSY_TIMEOUT_ENV,
            f"{configured!r} is not a number of seconds from 0 to "
            f"{_SQLITE_BUSY_TIMEOUT_MAX_MS // 1000}",
        )
    return milliseconds


def _sqlite_pragmas(busy_timeout_ms: int):  # noqa: ANN202 - an event listener
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # Off by default in SQLite; our ON DELETE rules and references depend on it.
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # WAL lets readers work while one process writes; NORMAL sync is durable under WAL
            # except for the last transactions on power loss, the usual trade for an embedded DB.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return set_pragmas


def prepare_sqlite_file(raw_url: str, *, create: bool) -> None:
    """Make sure a SQLite URL's file can be opened: with `create`, a missing file is created
    0600 (SQLite would create it with the umask's mode, readable by others); without, a
    missing file is an error. PostgreSQL and in-memory URLs pass untouched.

    Blocking: async code calls it through `asyncio.to_thread`.

    Raises:
        DatabaseUnavailableError: the directory does not exist, or (without `create`) the file.
    """
    url = to_async_url(raw_url)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is None or url.query.get("uri"):
        return  # a SQLite URI filename (`uri=true`) is the user's to manage
    # As SQLite resolves it: relative to the working directory, no `~` expansion.
    absolute = Path(os.path.abspath(path))
    if not absolute.parent.is_dir():
        raise DatabaseUnavailableError(
            f"Cannot open the SQLite database {redact_url(raw_url)}: "
            f"the directory {absolute.parent} does not exist."
        )
    if create:
        try:
            create_private_file(absolute)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"Cannot create the SQLite database {redact_url(raw_url)} ({absolute}): "
                f"{error.strerror or error}"
            ) from None
    elif not absolute.exists():
        raise DatabaseUnavailableError(
            f"Cannot open the SQLite database {redact_url(raw_url)}: there is no file "
            f"{absolute}, and this command does not create one. Check the path; "
            "`fast-agent-db db upgrade` creates a new database."
        )


def _open_existing_file_only(
    _dialect: Any, _record: Any, arguments: list[Any], options: dict[str, Any]
) -> None:
    """SQLite creates a missing file when it opens one; as a URI with `mode=rw` it opens an
    existing file or fails, so a file removed after `prepare_sqlite_file` looked is not
    recreated empty either."""
    filename = arguments[0] if arguments else None
    if options.get("uri") or not isinstance(filename, str) or filename == ":memory:":
        return
    arguments[0] = f"file:{quote(os.path.abspath(filename))}?mode=rw"
    options["uri"] = True


def create_async_database_engine(
    raw_url: str, *, echo: bool = False, create_file: bool = True
) -> AsyncEngine:
    """The process's async engine for a user-supplied URL.

    Touches no file: `DatabaseRuntime.open` prepares the SQLite file first
    (`prepare_sqlite_file`). With `create_file=False` its connections never create one.

    Raises:
        DatabaseUrlError: the URL is malformed or names an unsupported backend.
        InputError: SQLITE_BUSY_TIMEOUT_ENV is not a number of seconds.
    """
    url = to_async_url(raw_url)
    if is_sqlite(url):
        options: dict[str, Any] = {}
        if sqlite_file(url) is None:
            # One shared connection, or every checkout would see its own empty database.
            options["poolclass"] = StaticPool
        engine = create_async_engine(url, echo=echo, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms()))
        if not create_file:
            event.listen(engine.sync_engine, "do_connect", _open_existing_file_only)
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


def create_sync_database_engine(raw_url: str, *, create_file: bool = True) -> Engine:
    """A sync engine for Alembic, whose migration machinery is synchronous.

    On SQLite its transactions are real ones, DDL included, so a migration is all or nothing.
    A missing SQLite file is created 0600 here (`create_file`), or never.
    """
    url = to_async_url(raw_url)
    if is_sqlite(url):
        prepare_sqlite_file(raw_url, create=create_file)
        engine = create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms()))
        if not create_file:
            event.listen(engine, "do_connect", _open_existing_file_only)
        event.listen(engine, "connect", _leave_transactions_to_sqlalchemy)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    return create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


def driver_message(error: BaseException, url: URL | str | None = None) -> str:
    """The first line of what the driver said, with `url`'s secrets hidden.

    Never SQLAlchemy's own text for a statement error, which goes on with `[SQL: ...]` and
    `[parameters: ...]`: the statement's values (settings, message text) would reach the user.
    """
    cause = error.orig if isinstance(error, StatementError) and error.orig else error
    lines = str(cause).strip().splitlines()
    detail = lines[0].strip() if lines else ""
    # SQLAlchemy's own errors put the statement after the message, sometimes on one line.
    detail = detail.split("[SQL:", 1)[0].strip() or type(cause).__name__
    return redact_secrets(detail, url) if url is not None else detail


def describe_connection_error(url: URL, error: BaseException) -> DatabaseUnavailableError:
    """A clear, password-free error for a failed connection."""
    return DatabaseUnavailableError(
        f"Cannot connect to the database {redact_url(url)}: {driver_message(error, url)}"
    )


def _is_locked(cause: BaseException) -> bool:
    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


def describe_database_error(error: BaseException, url: URL | str | None) -> FastAgentDbError:
    """What a database error means to the user, as an error naming the database (redacted)
    and the driver's first line, never the statement or its parameters.

    For errors that reach a command's edge: the database stayed locked, the connection broke,
    a value or change was refused. Errors raised on purpose pass through unchanged.
    """
    if isinstance(error, FastAgentDbError):
        return error
    where = redact_url(url) if url is not None else "in use"
    detail = driver_message(error, url)
    cause = error.orig if isinstance(error, StatementError) and error.orig else error
    if _is_locked(cause):
        try:
            waited = f"{sqlite_busy_timeout_ms() / 1000:g} s"
        except InputError:
            waited = "its busy timeout"
        return DatabaseLockedError(
            f"The database {where} stayed locked by another process's write for {waited} "
            f"({SQLITE_BUSY_TIMEOUT_ENV} sets how long to wait, in seconds), so this command "
            f"stopped and its unfinished change was rolled back ({detail})."
        )
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return ConnectionLostError(
            f"Lost the connection to the database {where}: {detail}. The unfinished change was "
            "rolled back."
        )
    if isinstance(error, DataError):
        return DatabaseRefusedError(f"The database {where} refused a value: {detail}")
    if isinstance(error, IntegrityError):
        return DatabaseRefusedError(f"The database {where} refused the change: {detail}")
    if isinstance(error, OperationalError) and "connect" in detail.lower():
        return DatabaseUnavailableError(f"Cannot connect to the database {where}: {detail}")
    return DatabaseRefusedError(f"The database {where} reported an error: {detail}")


async def check_connection(engine: AsyncEngine) -> None:
    """Open one connection and run a trivial query, or raise DatabaseUnavailableError."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError, OSError) as error:
        raise describe_connection_error(engine.url, error) from None

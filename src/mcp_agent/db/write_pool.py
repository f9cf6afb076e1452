"""The PostgreSQL write path's own connections: a psycopg pool beside the engine's.

A call's start and end are single statements in autocommit (`turns/sql.py`). Through the
engine's pool each paid a checkout across the greenlet bridge, and under more concurrent
calls than the engine keeps (5 + 10 overflow) its overflow connections were closed on return
and opened again on the next checkout: a new server backend per statement, and statements
never reused long enough to be prepared (psycopg prepares a statement on its fifth use on a
connection). This pool hands out plain connections with asyncio, grows to its maximum under
load and keeps what it opened (one idle longer than `MAX_IDLE_S` is closed when met), so
concurrent calls queue for a warm connection instead. Measured in benchmarks/suite.py
(concurrency).

The pool connects with the engine's own connection arguments (the same URL, query options
and connect timeout), so both reach the same database the same way.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_agent.db.errors import InputError

#: Environment variable: at most this many write-path connections per process.
WRITE_POOL_SIZE_ENV = "FAST_AGENT_DB_WRITE_POOL_SIZE"
#: Measured on 2 cores: 8-32 connections give the same calls/s at 64 concurrent sessions; the
#: server, not the connection count, is the limit there.
DEFAULT_WRITE_POOL_SIZE = 10
#: A connection idle this long is closed (down to one).
MAX_IDLE_S = 300.0


def write_pool_size() -> int:
    """The configured maximum (WRITE_POOL_SIZE_ENV), or the default.

    Raises:
        InputError: the variable is not a whole number from 1.
    """
    raw = os.environ.get(WRITE_POOL_SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_WRITE_POOL_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise InputError(WRITE_POOL_SIZE_ENV, f"{raw!r} is not a number of connections (1 or more)")
    return size


class PostgresWritePool:
    """Autocommit psycopg connections for single-statement writes, opened on demand.

    Deliberately small rather than psycopg_pool: that pool connects in the background and
    makes a caller wait out its whole timeout when the server refuses, where a write here must
    fail at once with the server's own reason (a call fails before its model is asked).
    """

    def __init__(self, engine: AsyncEngine, *, max_size: int, ping_after_idle_s: float) -> None:
        self._engine = engine
        self._slots = asyncio.Semaphore(max_size)
        self._ping_after_idle_s = ping_after_idle_s
        #: Idle connections with when each was given back, the most recent last.
        self._idle: list[tuple[Any, float]] = []
        self._connect_kwargs: dict[str, Any] | None = None
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A `psycopg.AsyncConnection` in autocommit, given back after the block.

        Raises:
            psycopg.OperationalError: the server cannot be reached or refused the connection.
        """
        async with self._slots:
            connection = await self._take()
            try:
                yield connection
            finally:
                self._give_back(connection)

    async def _take(self) -> Any:
        now = time.monotonic()
        while self._idle:
            connection, returned = self._idle.pop()
            if now - returned < self._ping_after_idle_s:
                return connection
            # Idle for a while: a server restart or an idle timeout may have closed it.
            if now - returned < MAX_IDLE_S:
                try:
                    await connection.execute("SELECT 1")
                    return connection
                except Exception:  # noqa: BLE001 - any failure means: replace it
                    pass
            await connection.close()
        return await self._connect()

    async def _connect(self) -> Any:
        import psycopg

        if self._connect_kwargs is None:
            from mcp_agent.db.engine import POSTGRES_CONNECT_TIMEOUT_S

            _args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
            self._connect_kwargs = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, **kwargs}
        return await psycopg.AsyncConnection.connect(autocommit=True, **self._connect_kwargs)

    def _give_back(self, connection: Any) -> None:
        import psycopg

        usable = (
            not self._closed
            and not connection.closed
            and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if usable:
            self._idle.append((connection, time.monotonic()))
        else:
            # Broken (a lost server) or mid-statement (the caller was cancelled): no one else
            # may get it. close() of a psycopg connection does no I/O worth awaiting.
            asyncio.ensure_future(connection.close())

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _returned in idle:
            await connection.close()

"""Whose clock times the queue: the database server's on PostgreSQL, this machine's on SQLite.

Leases, when a run or a webhook delivery may be claimed, deadlines and retry backoff are
compared across workers. On PostgreSQL the workers may run on several machines, so these
times are taken from the server's clock (`now()`: the start of the current transaction, and
every transaction of the queue is short), never from a worker's: a worker whose clock is off
can neither take a live lease nor keep an expired one. SQLite is one machine (one worker), so
its clock is this process's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Float, func, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.models import types
from mcp_agent.db.models.types import UTCDateTime


def now_column(postgres: bool) -> ColumnElement[datetime]:
    """The current time as a SQL expression: `now()` on PostgreSQL, this machine's clock (a
    bound value) elsewhere; read back as a timezone-aware UTC datetime."""
    if postgres:
        return func.now(type_=UTCDateTime())
    # Read through the module, so a test that moves this process's clock moves this too.
    return literal(types.utc_now(), UTCDateTime())


def database_now_plus(seconds: float) -> ColumnElement[datetime]:
    """PostgreSQL: the server's `now()` plus `seconds` (a lease's end, a retry's time)."""
    interval = func.make_interval(0, 0, 0, 0, 0, 0, literal(seconds, Float()))
    return type_coerce(func.now() + interval, UTCDateTime())


async def database_now(connection: AsyncConnection, postgres: bool) -> datetime:
    """The current time by the queue's clock (see the module's docstring)."""
    if not postgres:
        return types.utc_now()
    now = await connection.scalar(select(now_column(postgres)))
    assert now is not None  # noqa: S101 - now() is never NULL
    return now

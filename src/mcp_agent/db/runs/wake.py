"""Waking who waits on the run queue: PostgreSQL LISTEN/NOTIFY, with polling as the fallback.

A submit (and a run queued again) NOTIFYs `RUNS_CHANNEL`, which idle workers LISTEN on; a
run's end NOTIFYs `RUN_ENDS_CHANNEL` with its id, which `runs wait` LISTENs on. PostgreSQL
sends a notification only when its transaction commits, so nobody wakes for a rolled-back
submit. A notification can be missed (the listening connection broke and was reconnected),
so every waiter also polls; a notification only makes it look sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mcp_agent.db.engine import POSTGRES_CONNECT_TIMEOUT_S
from mcp_agent.db.runtime import DatabaseRuntime

RUNS_CHANNEL = "fa_runs"
RUN_ENDS_CHANNEL = "fa_run_ends"
NOTIFY_RUNS_SQL = f"SELECT pg_notify('{RUNS_CHANNEL}', '')"
NOTIFY_RUN_END_SQL = f"SELECT pg_notify('{RUN_ENDS_CHANNEL}', :run_id)"
#: How often a waiter looks without being told (every waiter polls, LISTEN or not).
POLL_INTERVAL_S = 2.0


async def listen(
    runtime: DatabaseRuntime,
    channel: str,
    on_notify: Callable[[str], None],
    *,
    application_name: str,
    reconnect_after_s: float = POLL_INTERVAL_S,
) -> None:
    """LISTEN on `channel` on a connection of its own until cancelled, calling `on_notify`
    with each payload, and once (with "") each time listening (re)starts, since what was sent
    while it was not listening is lost. Reconnects when the connection breaks. PostgreSQL
    only."""
    import psycopg

    engine = runtime.engine
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    options = {
        "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
        # It only listens: without keepalives a server gone without closing the socket would
        # leave it waiting forever (polling still works meanwhile).
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        **kwargs,
        "application_name": application_name,
    }
    while True:
        try:
            connection = await psycopg.AsyncConnection.connect(autocommit=True, **options)
            try:
                await connection.execute(f"LISTEN {channel}")
                on_notify("")
                async for notification in connection.notifies():
                    on_notify(notification.payload)
            finally:
                await connection.close()
        except Exception:  # noqa: BLE001, S110 - polling covers the gap; connect again
            pass
        await asyncio.sleep(reconnect_after_s)


async def first_of(*events: asyncio.Event, timeout_s: float | None) -> None:
    """Return when one of `events` is set, or after `timeout_s` (None: no limit)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

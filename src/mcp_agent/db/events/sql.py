"""Events in fa_events; on PostgreSQL, monthly partitions made ahead of time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.models import EventRow
from mcp_agent.db.runtime import DatabaseRuntime

_COPY_COLUMNS = (
    "occurred_at",
    "level",
    "namespace",
    "name",
    "message",
    "data",
    "session_id",
    "execution_id",
    "agent_name",
    "trace_id",
    "span_id",
)


def month_start(moment: datetime, offset: int = 0) -> datetime:
    month = moment.month - 1 + offset
    return datetime(moment.year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"fa_events_{start:%Y_%m}"


class SqlEventSink:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def write(self, events: Sequence[EventRecord]) -> None:
        if not events:
            return
        if self._runtime.dialect == "postgresql":
            await self._copy(events)
            return
        async with self._runtime.sessions.begin() as session:
            await session.execute(insert(EventRow), [event.as_dict() for event in events])

    async def _copy(self, events: Sequence[EventRecord]) -> None:
        """PostgreSQL: COPY, many times faster than INSERT for batches (one transaction)."""
        from psycopg.types.json import Jsonb

        async with self._runtime.engine.begin() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.cursor() as cursor:
                async with cursor.copy(
                    f"COPY fa_events ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for event in events:
                        # Attribute by attribute: dataclasses.asdict would deep-copy `data`.
                        await copy.write_row(
                            (
                                event.occurred_at,
                                event.level,
                                event.namespace,
                                event.name,
                                event.message,
                                None if event.data is None else Jsonb(event.data),
                                event.session_id,
                                event.execution_id,
                                event.agent_name,
                                event.trace_id,
                                event.span_id,
                            )
                        )

    async def ensure_partitions(
        self, now: datetime | None = None, *, months_ahead: int = 1
    ) -> list[str]:
        """PostgreSQL: create this month's and the next months' partitions if missing.

        Rows of a month that has no partition yet land in the DEFAULT partition; a partition
        for that month can then no longer be created (PostgreSQL refuses while the default
        holds rows of its range), so such a month simply stays in the default partition,
        where prune deletes rows instead of dropping a partition. Returns the names created.
        """
        if self._runtime.dialect != "postgresql":
            return []
        now = now or datetime.now(UTC)
        created = []
        for offset in range(months_ahead + 1):
            start, end = month_start(now, offset), month_start(now, offset + 1)
            name = partition_name(start)
            try:
                async with self._runtime.engine.begin() as connection:
                    exists = await connection.scalar(
                        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}
                    )
                    if exists:
                        continue
                    await connection.execute(
                        text(
                            f"CREATE TABLE {name} PARTITION OF fa_events "
                            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                        )
                    )
                created.append(name)
            except DBAPIError as error:
                if "would be violated by some row" not in str(error):
                    raise
        return created

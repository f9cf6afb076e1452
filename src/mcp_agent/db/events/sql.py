"""Events in fa_events; on PostgreSQL, monthly partitions made ahead of time."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, insert, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.models import EventRow
from mcp_agent.db.models.events import EventSpillRow
from mcp_agent.db.runtime import DatabaseRuntime

COPY_COLUMNS = (
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


# COPY text format: backslash, and the row and column delimiters, are backslash-escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_COPY_NULL = "\\N"
_COPY_CHUNK = 250  # rows per write within one COPY

#: The channel every batch written to fa_events NOTIFYs on commit; the live feed
#: (events/feed.py) LISTENs on it instead of polling.
EVENTS_CHANNEL = "fa_events"
#: Serialises batches into fa_events (an arbitrary, fixed advisory-lock key, "fa-evnt").
EVENT_ORDER_LOCK_KEY = 0x66612D65766E74
#: Serialises the creation of fa_events partitions ("fa-part"): processes that start their
#: first run at the same time (workers on several machines) would otherwise all find a
#: month's partition missing and all create it, and all but one fail on DuplicateTable.
_PARTITION_LOCK_KEY = 0x66612D70617274
#: Run first in every transaction that writes fa_events on PostgreSQL, before any event_id is
#: drawn. The lock is held to the commit, so batches commit in the order of their event_ids
#: (ids drawn after the lock are above every id of the batches before): a reader never sees
#: an id while a lower one may still commit, which is what lets the feed resume from a single
#: id without missing anything. It serialises writers of events, not their callers (events
#: are written off the turn's path, and COPY keeps a batch short); a NOTIFY costs nothing
#: more, since PostgreSQL serialises the commits of notifying transactions anyway. Sent in
#: the same transaction, the notification is delivered on commit, or never if it rolls back.
ORDER_AND_NOTIFY_SQL = (
    f"SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK_KEY}), pg_notify('{EVENTS_CHANNEL}', '')"
)


# One encoder for every row: json.dumps with options builds a new encoder per call. NaN and
# infinities are refused (jsonb cannot hold them) and then stored as strings.
_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

#: Text columns with a length limit, read from the table itself.
_LENGTH_LIMITS = {
    column.name: column.type.length
    for column in EventRow.__table__.columns
    if isinstance(column.type, String) and column.type.length
}
_CUT_MARK = "\u2026"


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by its name ("NaN", "Infinity")."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {key: _finite(entry) for key, entry in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(entry) for entry in value]
    return value


def _cut_to_fit(event: EventRecord) -> EventRecord:
    """Text longer than its column, cut (ending in an ellipsis); unchanged events not copied."""
    changes = {
        name: value[: limit - 1] + _CUT_MARK
        for name, limit in _LENGTH_LIMITS.items()
        if (value := getattr(event, name)) is not None and len(value) > limit
    }
    return replace(event, **changes) if changes else event


def _data_json(data: dict[str, Any]) -> str:
    try:
        return _encode_json(data)
    except ValueError:  # a NaN or an infinity somewhere
        return _encode_json(_finite(data))


def storable(event: EventRecord) -> EventRecord:
    """The event as the table can hold it, on both backends alike.

    One event the table refuses would fail its whole batch, and a failed batch is spilled and
    retried, so it would never be stored. Text longer than its column is cut, and non-finite
    floats in `data` become strings (`copy_text_line` applies the same two rules).
    """
    event = _cut_to_fit(event)
    return event if event.data is None else replace(event, data=_finite(event.data))


def _copy_text(value: str | None) -> str:
    if value is None:
        return _COPY_NULL
    # Most values need no escaping, and four scans are cheaper than a translate.
    if "\\" in value or "\n" in value or "\r" in value or "\t" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_text_line(event: EventRecord) -> str:
    """The event as one line of COPY's text format, made `storable` first."""
    event = _cut_to_fit(event)
    # The encoder escapes control characters itself, so only its backslashes need escaping.
    data = _COPY_NULL if event.data is None else _data_json(event.data).replace("\\", "\\\\")
    return (
        "\t".join(
            (
                event.occurred_at.isoformat(),
                _copy_text(event.level),
                _copy_text(event.namespace),
                _copy_text(event.name),
                _copy_text(event.message),
                data,
                _copy_text(event.session_id),
                _copy_text(event.execution_id),
                _copy_text(event.agent_name),
                _copy_text(event.trace_id),
                _copy_text(event.span_id),
            )
        )
        + "\n"
    )


def _insert_ignoring_duplicate(dialect: str) -> Any:
    """An INSERT into fa_event_spills that can say ON CONFLICT DO NOTHING on this backend."""
    if dialect == "postgresql":
        return postgresql_insert(EventSpillRow)
    return sqlite_insert(EventSpillRow)


async def _copy(connection: AsyncConnection, events: Sequence[EventRecord]) -> None:
    """PostgreSQL: COPY, many times faster than INSERT for batches (in the connection's
    transaction), after ORDER_AND_NOTIFY_SQL.

    Rows are encoded in COPY's text format here and sent in chunks: row-by-row `write_row`
    (an await and a type adaptation per value) held the writer to a third of the server's
    COPY rate, and chunks let the server ingest one while the next is encoded.
    """
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        await cursor.execute(ORDER_AND_NOTIFY_SQL)
        async with cursor.copy(f"COPY fa_events ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            for start in range(0, len(events), _COPY_CHUNK):
                chunk = events[start : start + _COPY_CHUNK]
                await copy.write("".join(map(copy_text_line, chunk)).encode())


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
            async with self._runtime.engine.begin() as connection:
                await _copy(connection, events)
            return
        async with self._runtime.sessions.begin() as session:
            await session.execute(insert(EventRow), [storable(event).as_dict() for event in events])

    async def write_once(self, spill_id: str, events: Sequence[EventRecord]) -> bool:
        """Store a spilled batch and its `fa_event_spills` row in one transaction, or nothing
        if the row is there already (an earlier replay stored the batch).

        A replay of the same file running concurrently waits on the row's key until the first
        one commits or rolls back, then stores nothing or everything.
        """
        spill = _insert_ignoring_duplicate(self._runtime.dialect).values(
            spill_id=spill_id, event_count=len(events), stored_at=datetime.now(UTC)
        )
        claim = spill.on_conflict_do_nothing().returning(EventSpillRow.spill_id)
        async with self._runtime.engine.begin() as connection:
            if await connection.scalar(claim) is None:
                return False
            if not events:
                return True
            if self._runtime.dialect == "postgresql":
                await _copy(connection, events)
            else:
                await connection.execute(
                    insert(EventRow), [storable(event).as_dict() for event in events]
                )
        return True

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
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_LOCK_KEY}
                    )
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

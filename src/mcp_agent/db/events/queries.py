"""Reading the event log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.models import EventRow
from mcp_agent.db.runtime import DatabaseRuntime

LEVELS = ("debug", "info", "warning", "error")


def allowed_levels(min_level: str) -> list[str]:
    """The levels at or above `min_level`; progress events rank as debug, as upstream's
    filters do.

    Raises:
        ValueError: `min_level` is not one of LEVELS.
    """
    return list(LEVELS[LEVELS.index(min_level) :]) + (["progress"] if min_level == "debug" else [])


def event_conditions(
    *,
    session_id: str | None = None,
    agent_name: str | None = None,
    min_level: str | None = None,
    since: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the event filters that are set (shared by `logs` and the feed).

    Raises:
        ValueError: `min_level` is not one of LEVELS.
    """
    conditions: list[ColumnElement[bool]] = []
    if session_id is not None:
        conditions.append(EventRow.session_id == session_id)
    if agent_name is not None:
        conditions.append(EventRow.agent_name == agent_name)
    if min_level is not None:
        conditions.append(EventRow.level.in_(allowed_levels(min_level)))
    if since is not None:
        conditions.append(EventRow.occurred_at >= since)
    return conditions


def stored_record(row: EventRow) -> EventRecord:
    """The record a row of fa_events holds."""
    return EventRecord(
        occurred_at=row.occurred_at,
        level=row.level,
        namespace=row.namespace,
        message=row.message,
        name=row.name,
        data=row.data,
        session_id=row.session_id,
        execution_id=row.execution_id,
        agent_name=row.agent_name,
        trace_id=row.trace_id,
        span_id=row.span_id,
    )


async def read_events(
    runtime: DatabaseRuntime,
    *,
    session_id: str | None = None,
    agent_name: str | None = None,
    min_level: str | None = None,
    since: datetime | None = None,
    after_event_id: int | None = None,
    limit: int = 200,
) -> list[tuple[int, EventRecord]]:
    """Events matching the filters, oldest first, with their ids (for following)."""
    query = select(EventRow).where(
        *event_conditions(
            session_id=session_id, agent_name=agent_name, min_level=min_level, since=since
        )
    )
    if after_event_id is None:
        # The newest `limit` events, returned oldest first.
        query = query.order_by(EventRow.event_id.desc()).limit(limit)
    else:
        query = query.where(EventRow.event_id > after_event_id).order_by(EventRow.event_id)
    async with runtime.sessions() as session:
        rows = list(await session.scalars(query))
    if after_event_id is None:
        rows.reverse()
    return [(row.event_id, stored_record(row)) for row in rows]


async def read_events_before(
    runtime: DatabaseRuntime,
    *,
    before_event_id: int | None = None,
    limit: int,
    session_id: str | None = None,
    agent_name: str | None = None,
    min_level: str | None = None,
    since: datetime | None = None,
) -> list[tuple[int, EventRecord]]:
    """Events matching the filters, newest first, with ids below `before_event_id` (from the
    newest when None), at most `limit`: the log read backwards a page at a time."""
    query = select(EventRow).where(
        *event_conditions(
            session_id=session_id, agent_name=agent_name, min_level=min_level, since=since
        )
    )
    if before_event_id is not None:
        query = query.where(EventRow.event_id < before_event_id)
    query = query.order_by(EventRow.event_id.desc()).limit(limit)
    async with runtime.sessions() as session:
        rows = list(await session.scalars(query))
    return [(row.event_id, stored_record(row)) for row in rows]

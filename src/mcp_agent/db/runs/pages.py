"""Runs a page at a time, newest first, for `GET /v1/runs`: keyset pages on (created_at,
run_id), so runs submitted between two requests neither repeat nor shift the pages after."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.runs.base import Run, RunStatus
from mcp_agent.db.runs.sql import check_limit, run_from_row
from mcp_agent.db.runtime import DatabaseRuntime

_runs = RunRow.__table__


async def runs_page(
    runtime: DatabaseRuntime,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
    status: RunStatus | None = None,
    agent_name: str | None = None,
    session_id: str | None = None,
    caller: str | None = None,
) -> list[Run]:
    """At most `limit` runs matching every filter given, newest first, from after `before`
    (the (created_at, run_id) of the previous page's last run)."""
    query = select(_runs).order_by(_runs.c.created_at.desc(), _runs.c.run_id.desc())
    if before is not None:
        at, run_id = before
        # Spelled out rather than a row comparison, which SQLite's planner uses no index for.
        query = query.where(
            or_(
                _runs.c.created_at < at,
                (_runs.c.created_at == at) & (_runs.c.run_id < run_id),
            )
        )
    for column, value in (
        (_runs.c.status, status),
        (_runs.c.agent_name, agent_name),
        (_runs.c.session_id, session_id),
        (_runs.c.caller, caller),
    ):
        if value is not None:
            query = query.where(column == value)
    async with runtime.engine.connect() as connection:
        rows = await connection.execute(query.limit(check_limit(limit)))
        return [run_from_row(row) for row in rows]

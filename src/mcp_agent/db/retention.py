"""Retention: removing old events, executions and (optionally) sessions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text

from mcp_agent.db.events.sql import month_start
from mcp_agent.db.models import EventRow, ExecutionRow, MessageRow, SessionRow
from mcp_agent.db.runtime import DatabaseRuntime

_MONTHLY_PARTITION = re.compile(r"^fa_events_(\d{4})_(\d{2})$")


@dataclass(slots=True)
class PruneReport:
    events: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    executions: int = 0
    sessions: int = 0
    messages: int = 0


async def prune(
    runtime: DatabaseRuntime, *, older_than: datetime, sessions: bool = False, apply: bool = True
) -> PruneReport:
    """Remove what is older than `older_than`, in one transaction, and say exactly what;
    with `apply=False` only count it (nothing is locked or changed).

    * events: on PostgreSQL whole monthly partitions ending before the cutoff are dropped;
      remaining older rows (the DEFAULT partition, the month of the cutoff) are deleted;
    * executions: whole trees whose root started before the cutoff and is not running;
    * sessions (only when asked): sessions not updated since the cutoff that no branch
      depends on, with their messages.
    """
    report = PruneReport()
    async with runtime.sessions.begin() as session:
        if runtime.dialect == "postgresql":
            names = await session.scalars(
                text(
                    "SELECT child.relname FROM pg_inherits "
                    "JOIN pg_class parent ON parent.oid = inhparent "
                    "JOIN pg_class child ON child.oid = inhrelid "
                    "WHERE parent.relname = 'fa_events'"
                )
            )
            for name in sorted(names):
                match = _MONTHLY_PARTITION.match(name)
                if match is None:
                    continue  # the DEFAULT partition, or one we did not make
                start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
                if month_start(start, 1) <= older_than:
                    counted = await session.scalar(text(f'SELECT count(*) FROM "{name}"'))
                    report.events += int(counted or 0)
                    if apply:
                        await session.execute(text(f'DROP TABLE "{name}"'))
                    report.partitions_dropped.append(name)
        old_events = EventRow.occurred_at < older_than
        if apply:
            removed = await session.execute(delete(EventRow).where(old_events))
            report.events += removed.rowcount or 0
        else:
            # Every row of a partition that would be dropped is older than the cutoff too.
            report.events = int(
                await session.scalar(select(func.count()).select_from(EventRow).where(old_events))
                or 0
            )

        roots = select(ExecutionRow.execution_id).where(
            ExecutionRow.parent_execution_id.is_(None),
            ExecutionRow.started_at < older_than,
            ExecutionRow.status != "running",
        )
        tree = roots.cte("tree", recursive=True)
        tree = tree.union_all(
            select(ExecutionRow.execution_id).where(
                ExecutionRow.parent_execution_id == tree.c.execution_id
            )
        )
        report.executions = int(await session.scalar(select(func.count()).select_from(tree)) or 0)
        if apply:
            await session.execute(
                delete(ExecutionRow).where(ExecutionRow.execution_id.in_(roots.scalar_subquery()))
            )

        if sessions:
            branched_from = select(SessionRow.parent_session_id).where(
                SessionRow.parent_session_id.is_not(None)
            )
            stale = select(SessionRow.session_id).where(
                SessionRow.updated_at < older_than, SessionRow.session_id.not_in(branched_from)
            )
            stale_ids = list(await session.scalars(stale))
            if stale_ids:
                report.messages = int(
                    await session.scalar(
                        select(func.count()).where(MessageRow.session_id.in_(stale_ids))
                    )
                    or 0
                )
                if apply:
                    await session.execute(
                        delete(MessageRow).where(MessageRow.session_id.in_(stale_ids))
                    )
                    await session.execute(
                        delete(SessionRow).where(SessionRow.session_id.in_(stale_ids))
                    )
            report.sessions = len(stale_ids)
    return report

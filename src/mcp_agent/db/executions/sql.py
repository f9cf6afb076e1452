"""Executions in fa_executions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update

from mcp_agent.db.executions.base import (
    ExecutionRecord,
    ExecutionStatus,
)
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.runtime import DatabaseRuntime


def _record(row: ExecutionRow) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=row.execution_id,
        parent_execution_id=row.parent_execution_id,
        agent_name=row.agent_name,
        agent_version_id=row.agent_version_id,
        operation=row.operation,
        status=row.status,  # type: ignore[arg-type]
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        session_id=row.session_id,
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens,
        cache_write_tokens=row.cache_write_tokens,
        reasoning_tokens=row.reasoning_tokens,
        cost=row.cost,
        settings_source=row.settings_source,
    )


class SqlExecutionStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def mark_interrupted(self, worker_ids: Sequence[str]) -> int:
        if not worker_ids:
            return 0
        async with self._runtime.sessions.begin() as session:
            result = await session.execute(
                update(ExecutionRow)
                .where(ExecutionRow.status == "running", ExecutionRow.worker_id.in_(worker_ids))
                .values(status="interrupted")
            )
            return result.rowcount or 0

    async def running_workers(self) -> list[str]:
        """Workers that have executions still marked running."""
        async with self._runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow.worker_id)
                .where(ExecutionRow.status == "running", ExecutionRow.worker_id.is_not(None))
                .distinct()
            )
            return [row for row in rows if row]

    async def tree(self, root_execution_id: str) -> list[ExecutionRecord]:
        # A recursive CTE: one round trip whatever the depth of the workflow.
        tree = (
            select(ExecutionRow.execution_id)
            .where(ExecutionRow.execution_id == root_execution_id)
            .cte("tree", recursive=True)
        )
        tree = tree.union_all(
            select(ExecutionRow.execution_id).where(
                ExecutionRow.parent_execution_id == tree.c.execution_id
            )
        )
        async with self._runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow)
                .where(ExecutionRow.execution_id.in_(select(tree.c.execution_id)))
                .order_by(ExecutionRow.started_at)
            )
            return [_record(row) for row in rows]

    async def roots_page(
        self,
        *,
        limit: int,
        before: tuple[datetime, str] | None = None,
        session_id: str | None = None,
        agent_name: str | None = None,
        status: ExecutionStatus | None = None,
    ) -> list[ExecutionRecord]:
        """As `roots`, filtered, and from after `before`: the (started_at, execution_id) of
        the last root a previous page returned (keyset pagination: ties broken by id)."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.parent_execution_id.is_(None))
            .order_by(ExecutionRow.started_at.desc(), ExecutionRow.execution_id.desc())
            .limit(limit)
        )
        if before is not None:
            at, execution_id = before
            query = query.where(
                or_(
                    ExecutionRow.started_at < at,
                    and_(ExecutionRow.started_at == at, ExecutionRow.execution_id < execution_id),
                )
            )
        if session_id is not None:
            query = query.where(ExecutionRow.session_id == session_id)
        if agent_name is not None:
            query = query.where(ExecutionRow.agent_name == agent_name)
        if status is not None:
            query = query.where(ExecutionRow.status == status)
        async with self._runtime.sessions() as session:
            return [_record(row) for row in await session.scalars(query)]

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        async with self._runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow)
                .where(ExecutionRow.parent_execution_id.is_(None))
                .order_by(ExecutionRow.started_at.desc())
                .limit(limit)
            )
            return [_record(row) for row in rows]

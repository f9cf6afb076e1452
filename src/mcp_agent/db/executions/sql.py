"""Executions in fa_executions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from mcp_agent.db.executions.base import (
    ExecutionRecord,
    ExecutionStart,
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
    )


class SqlExecutionStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def start(self, execution: ExecutionStart) -> None:
        async with self._runtime.sessions.begin() as session:
            session.add(
                ExecutionRow(
                    execution_id=execution.execution_id,
                    parent_execution_id=execution.parent_execution_id,
                    session_id=execution.session_id,
                    agent_name=execution.agent_name,
                    agent_version_id=execution.agent_version_id,
                    operation=execution.operation,
                    status="running",
                    started_at=execution.started_at,
                    worker_id=execution.worker_id,
                )
            )

    async def finish(
        self,
        execution_id: str,
        *,
        status: ExecutionStatus,
        finished_at: datetime,
        error: str | None = None,
    ) -> None:
        async with self._runtime.sessions.begin() as session:
            await session.execute(
                update(ExecutionRow)
                .where(ExecutionRow.execution_id == execution_id)
                .values(status=status, finished_at=finished_at, error=error)
            )

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

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        async with self._runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow)
                .where(ExecutionRow.parent_execution_id.is_(None))
                .order_by(ExecutionRow.started_at.desc())
                .limit(limit)
            )
            return [_record(row) for row in rows]

"""Executions in fa_executions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update

from mcp_agent.db.conversations.base import PendingTurn
from mcp_agent.db.conversations.sql import append_messages
from mcp_agent.db.executions.base import (
    ExecutionRecord,
    ExecutionStart,
    ExecutionStatus,
)
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models import ExecutionRow, UsageTurnRow
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

    async def start(self, execution: ExecutionStart) -> None:
        # On every agent call's path: one Core statement in autocommit, a single round trip
        # (a transaction would add BEGIN and COMMIT round trips for nothing).
        async with self._runtime.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(
                insert(ExecutionRow).values(
                    execution_id=execution.execution_id,
                    parent_execution_id=execution.parent_execution_id,
                    session_id=execution.session_id,
                    agent_name=execution.agent_name,
                    agent_version_id=execution.agent_version_id,
                    operation=execution.operation,
                    status="running",
                    started_at=execution.started_at,
                    worker_id=execution.worker_id,
                    settings_source=execution.settings_source,
                )
            )

    async def finish(
        self,
        execution_id: str,
        *,
        status: ExecutionStatus,
        finished_at: datetime,
        error: str | None = None,
        totals: UsageTotals | None = None,
        turns: Sequence[UsageTurn] = (),
        history: PendingTurn | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status, "finished_at": finished_at, "error": error}
        if totals is not None:
            values.update(
                input_tokens=totals.input_tokens,
                output_tokens=totals.output_tokens,
                cache_read_tokens=totals.cache_read_tokens,
                cache_write_tokens=totals.cache_write_tokens,
                reasoning_tokens=totals.reasoning_tokens,
                cost=totals.cost,
                model=", ".join(sorted(totals.models))[:200] or None,
            )
        async with self._runtime.engine.begin() as connection:
            if history is not None:
                await append_messages(
                    connection, history.session_id, history.agent_name, history.messages
                )
            await connection.execute(
                update(ExecutionRow)
                .where(ExecutionRow.execution_id == execution_id)
                .values(**values)
            )
            if turns:
                await connection.execute(
                    insert(UsageTurnRow),
                    [
                        {
                            "execution_id": execution_id,
                            "provider": turn.provider,
                            "model": turn.model,
                            "input_tokens": turn.input_tokens,
                            "output_tokens": turn.output_tokens,
                            "cache_read_tokens": turn.cache_read_tokens,
                            "cache_write_tokens": turn.cache_write_tokens,
                            "reasoning_tokens": turn.reasoning_tokens,
                            "tool_use_tokens": turn.tool_use_tokens,
                            "cost": turn.cost,
                            "raw_usage": turn.raw_usage,
                        }
                        for turn in turns
                    ],
                )

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

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        async with self._runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow)
                .where(ExecutionRow.parent_execution_id.is_(None))
                .order_by(ExecutionRow.started_at.desc())
                .limit(limit)
            )
            return [_record(row) for row in rows]

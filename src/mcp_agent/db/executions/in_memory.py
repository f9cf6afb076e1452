"""In-memory execution store: the reference implementation and the test double."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mcp_agent.db.executions.base import ExecutionRecord
from mcp_agent.db.turns.in_memory import InMemoryTurnStore


class InMemoryExecutionStore:
    """Reads and maintains the records an `InMemoryTurnStore` holds (the calls it started and
    ended), as the SQL store reads the rows the SQL turn store writes: both see one log."""

    def __init__(self, turns: InMemoryTurnStore) -> None:
        self._turns = turns

    async def running_workers(self) -> list[str]:
        workers = {
            self._turns.worker_ids.get(execution_id)
            for execution_id, record in self._turns.executions.items()
            if record.status == "running"
        }
        return sorted(worker for worker in workers if worker)

    async def mark_interrupted(self, worker_ids: Sequence[str]) -> int:
        dead = set(worker_ids)
        marked = 0
        executions = self._turns.executions
        for execution_id, record in list(executions.items()):
            if record.status == "running" and self._turns.worker_ids.get(execution_id) in dead:
                executions[execution_id] = dataclasses.replace(record, status="interrupted")
                marked += 1
        return marked

    async def tree(self, root_execution_id: str) -> list[ExecutionRecord]:
        executions = self._turns.executions
        if root_execution_id not in executions:
            return []
        children: dict[str, list[ExecutionRecord]] = {}
        for record in executions.values():
            if record.parent_execution_id is not None:
                children.setdefault(record.parent_execution_id, []).append(record)
        found = [executions[root_execution_id]]
        for record in found:  # grows while it is walked: breadth first
            found.extend(children.get(record.execution_id, []))
        # Ordered by start, as the SQL store orders them: a child starts after its parent.
        return sorted(found, key=lambda record: record.started_at)

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        roots = [
            record
            for record in self._turns.executions.values()
            if record.parent_execution_id is None
        ]
        return sorted(roots, key=lambda record: record.started_at, reverse=True)[:limit]

"""In-memory turn store: the reference implementation and the test double."""

from __future__ import annotations

import dataclasses

from mcp_agent.db.conversations.in_memory import InMemoryConversationStore
from mcp_agent.db.errors import CallNotStartedError
from mcp_agent.db.executions.base import ExecutionRecord, ExecutionStart
from mcp_agent.db.executions.usage import UsageTurn
from mcp_agent.db.turns.base import CallEnd


class InMemoryTurnStore:
    """Calls as `ExecutionRecord`s, usage rows per call, turns in an in-memory conversation
    store (shared with the caller's, so what a run stores can be loaded back).

    `InMemoryExecutionStore` reads and maintains these records, as `SqlExecutionStore` reads
    the rows `SqlTurnStore` writes.
    """

    def __init__(self, conversations: InMemoryConversationStore | None = None) -> None:
        self.conversations = conversations or InMemoryConversationStore()
        self.executions: dict[str, ExecutionRecord] = {}
        self.usage: dict[str, list[UsageTurn]] = {}
        #: execution id -> the worker that started it (an `ExecutionRecord` does not carry it).
        self.worker_ids: dict[str, str] = {}

    async def start_call(self, start: ExecutionStart) -> None:
        if start.execution_id in self.executions:
            raise ValueError(f"execution {start.execution_id!r} exists already")
        self.executions[start.execution_id] = ExecutionRecord(
            execution_id=start.execution_id,
            parent_execution_id=start.parent_execution_id,
            agent_name=start.agent_name,
            agent_version_id=start.agent_version_id,
            operation=start.operation,
            status="running",
            started_at=start.started_at,
            finished_at=None,
            error=None,
            session_id=start.session_id,
            settings_source=start.settings_source,
        )
        self.worker_ids[start.execution_id] = start.worker_id

    async def end_call(self, end: CallEnd) -> list[int]:
        record = self.executions.get(end.execution_id)
        if record is None:
            raise CallNotStartedError(f"the call {end.execution_id!r} has no running row")
        # The turn first: a missing session raises before anything changed.
        sequences = []
        if end.turn is not None and end.turn.messages:
            sequences = await self.conversations.append(
                end.turn.session_id, end.turn.agent_name, end.turn.messages
            )
        changes: dict[str, object] = {
            "status": end.status,
            "finished_at": end.finished_at,
            "error": end.error,
        }
        if end.totals is not None:
            changes.update(
                input_tokens=end.totals.input_tokens,
                output_tokens=end.totals.output_tokens,
                cache_read_tokens=end.totals.cache_read_tokens,
                cache_write_tokens=end.totals.cache_write_tokens,
                reasoning_tokens=end.totals.reasoning_tokens,
                cost=end.totals.cost,
                model=", ".join(sorted(end.totals.models))[:200] or None,
            )
        self.executions[end.execution_id] = dataclasses.replace(record, **changes)
        self.usage.setdefault(end.execution_id, []).extend(end.usage)
        return sequences

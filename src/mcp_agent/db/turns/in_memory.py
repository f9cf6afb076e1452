"""In-memory turn store: the reference implementation and the test double."""

from __future__ import annotations

import dataclasses

from mcp_agent.db.conversations.in_memory import InMemoryConversationStore
from mcp_agent.db.errors import CallNotStartedError
from mcp_agent.db.executions.base import ExecutionRecord, ExecutionStart
from mcp_agent.db.executions.usage import UsageTurn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.journal import Fence, InMemoryRunJournal
from mcp_agent.db.turns.base import CallEnd


class InMemoryTurnStore:
    """Calls as `ExecutionRecord`s, usage rows per call, turns in an in-memory conversation
    store (shared with the caller's, so what a run stores can be loaded back).

    `InMemoryExecutionStore` reads and maintains these records, as `SqlExecutionStore` reads
    the rows `SqlTurnStore` writes.
    """

    def __init__(
        self,
        conversations: InMemoryConversationStore | None = None,
        *,
        journal: InMemoryRunJournal | None = None,
    ) -> None:
        self.conversations = conversations or InMemoryConversationStore()
        self.executions: dict[str, ExecutionRecord] = {}
        self.usage: dict[str, list[UsageTurn]] = {}
        #: execution id -> the worker that started it (an `ExecutionRecord` does not carry it).
        self.worker_ids: dict[str, str] = {}
        #: execution id -> the durable run it belongs to.
        self.run_ids: dict[str, str] = {}
        #: The runs' leases that fence writes, and where `call` steps go.
        self.journal = journal or InMemoryRunJournal()
        self.journal.turns = self

    def _check(self, fence: Fence | None) -> None:
        if fence is not None:
            self.journal.check(fence)

    def interrupt_run(self, run_id: str, reason: str) -> int:
        """Mark the run's executions still `running` as `interrupted` (an earlier attempt's)."""
        marked = 0
        for execution_id, record in list(self.executions.items()):
            if record.status == "running" and self.run_ids.get(execution_id) == run_id:
                self.executions[execution_id] = dataclasses.replace(
                    record, status="interrupted", error=reason, finished_at=utc_now()
                )
                marked += 1
        return marked

    async def start_call(self, start: ExecutionStart, *, fence: Fence | None = None) -> None:
        self._check(fence)
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
        if fence is not None:
            self.run_ids[start.execution_id] = fence.run_id

    async def end_call(self, end: CallEnd) -> list[int]:
        self._check(end.fence)
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
        if end.step is not None:
            self.journal.keep(end.step)
        return sequences

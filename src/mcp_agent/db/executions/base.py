"""The execution log seam: one record per agent call, forming a tree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

ExecutionStatus = Literal["running", "completed", "failed", "interrupted"]


@dataclass(frozen=True, slots=True)
class ExecutionStart:
    execution_id: str
    parent_execution_id: str | None
    agent_name: str
    agent_version_id: int | None
    operation: str
    started_at: datetime
    worker_id: str
    session_id: str | None = None
    #: `database`, or `file PATH` when the run was given a configuration file.
    settings_source: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_id: str
    parent_execution_id: str | None
    agent_name: str
    agent_version_id: int | None
    operation: str
    status: ExecutionStatus
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    session_id: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal | None = None
    settings_source: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ExecutionStore(Protocol):
    """Reading and maintaining the execution log. What a running call writes (its start,
    its end with usage and turn) goes through the turn store (`mcp_agent.db.turns`)."""

    async def running_workers(self) -> list[str]:
        """Worker ids that still have executions marked running."""
        ...

    async def mark_interrupted(self, worker_ids: Sequence[str]) -> int:
        """Mark rows still `running` for these (dead) workers as `interrupted`."""
        ...

    async def tree(self, root_execution_id: str) -> list[ExecutionRecord]:
        """An execution and all of its descendants, parents before children."""
        ...

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        """The newest user-level executions (those without a parent), newest first."""
        ...

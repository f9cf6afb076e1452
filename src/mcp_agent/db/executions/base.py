"""The execution log seam: one record per agent call, forming a tree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


class ExecutionStore(Protocol):
    async def start(self, execution: ExecutionStart) -> None:
        """Record that an execution began (status running)."""
        ...

    async def finish(
        self,
        execution_id: str,
        *,
        status: ExecutionStatus,
        finished_at: datetime,
        error: str | None = None,
    ) -> None:
        """Record how an execution ended."""
        ...

    async def tree(self, root_execution_id: str) -> list[ExecutionRecord]:
        """An execution and all of its descendants, parents before children."""
        ...

    async def roots(self, *, limit: int = 20) -> list[ExecutionRecord]:
        """The newest user-level executions (those without a parent), newest first."""
        ...

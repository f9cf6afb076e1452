"""The turn store seam: what an agent call writes at its start and at its end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mcp_agent.db.conversations.base import PendingTurn
from mcp_agent.db.executions.base import ExecutionStart, ExecutionStatus
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.runs.journal import Fence, JournalStep


@dataclass(frozen=True, slots=True)
class CallEnd:
    """How a call ended, with everything its end writes in one transaction."""

    execution_id: str
    status: ExecutionStatus
    finished_at: datetime
    error: str | None = None
    #: Its own provider calls plus its children's; None leaves the row's totals as they are.
    totals: UsageTotals | None = None
    #: Its own provider calls, one `fa_usage_turns` row each.
    usage: Sequence[UsageTurn] = ()
    #: What it added to its session's history; None when it added nothing (or failed).
    turn: PendingTurn | None = None
    #: A durable run's call: the run and lease epoch the end is fenced by (None: no run).
    fence: Fence | None = None
    #: A durable run's `call` step (its reply), stored in the same transaction as the turn.
    step: JournalStep | None = None


class TurnStore(Protocol):
    async def start_call(self, start: ExecutionStart, *, fence: Fence | None = None) -> None:
        """Record that a call began (status running), before the model is asked: a
        database that cannot take it fails the call before any token is spent.

        With `fence` (a durable run's call) the execution gets the run's id, and the write
        is refused unless the run is running at the fence's lease epoch.

        Raises:
            LeaseLostError: the fence was refused; nothing stored.
        """
        ...

    async def end_call(self, end: CallEnd) -> list[int]:
        """Record the call's end, its usage and its turn atomically; the turn's sequences.

        Raises:
            SessionError: the turn's session (or an ancestor of it) does not exist.
            CallNotStartedError: no start of this call is recorded.
            LeaseLostError: `end.fence` was refused; nothing stored.
        """
        ...

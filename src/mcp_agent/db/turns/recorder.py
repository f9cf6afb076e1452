"""Recording every agent call of a run: its start, and its end with usage and the turn it
added to the session's history, through a `TurnStore`.

Each agent instance's `generate` and `structured` are wrapped (patches/agent_calls.py). The
execution being run is kept in a context variable: a workflow's calls to its children happen
inside it, so children record it as their parent, and asyncio tasks (parallel fan-out)
inherit it. `send` goes through `generate` upstream.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_agent.db import run_context
from mcp_agent.db.conversations.binding import ConversationBinding
from mcp_agent.db.engine import driver_message
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.tracking import WORKER_ID
from mcp_agent.db.executions.usage import PriceBook, UsageTotals, usage_turn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.patches import agent_calls
from mcp_agent.db.turns.base import CallEnd, TurnStore

_current_execution = run_context.current_execution


class RunRecorder:
    """Wraps a running app's agents so each call is recorded."""

    def __init__(
        self,
        turns: TurnStore,
        versions: Mapping[str, int | None],
        *,
        conversation: ConversationBinding | None = None,
        prices: PriceBook | None = None,
        settings_source: str | None = None,
    ) -> None:
        self.turns = turns
        self.versions = versions
        self.conversation = conversation
        self.prices = prices or PriceBook([])
        self.settings_source = settings_source
        # Usage of finished children, waiting for their parent to finish.
        self._children_usage: dict[str, UsageTotals] = {}

    def track(self, agents: Mapping[str, Any]) -> None:
        agent_calls.install(agents, self._wrap)

    def _wrap(
        self, name: str, agent: Any, operation: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(call)
        async def recorded(*args: Any, **kwargs: Any) -> Any:
            execution_id = str(uuid.uuid4())
            parent_id = _current_execution.get()
            conversation = self.conversation
            await self.turns.start_call(
                ExecutionStart(
                    execution_id=execution_id,
                    parent_execution_id=parent_id,
                    agent_name=name,
                    agent_version_id=self.versions.get(name),
                    operation=operation,
                    started_at=utc_now(),
                    worker_id=WORKER_ID,
                    session_id=conversation.session_id if conversation else None,
                    settings_source=self.settings_source,
                )
            )
            snapshot = conversation.snapshot(agent) if conversation else None
            accumulator = getattr(agent, "usage_accumulator", None)
            turns_before = len(accumulator.turns) if accumulator is not None else 0
            token = _current_execution.set(execution_id)
            agent_token = run_context.current_agent.set(name)
            status, error_text = "completed", None
            history = None
            try:
                result = await call(*args, **kwargs)
                if conversation:
                    history = conversation.pending_turn(name, agent, snapshot, execution_id)
            except BaseException as error:
                if conversation:
                    conversation.roll_back(agent, snapshot)
                status, error_text = "failed", repr(error)
                raise
            finally:
                _current_execution.reset(token)
                run_context.current_agent.reset(agent_token)
                turns = (
                    [usage_turn(t, self.prices) for t in accumulator.turns[turns_before:]]
                    if accumulator is not None
                    else []
                )
                totals = self._children_usage.pop(execution_id, UsageTotals())
                for turn in turns:
                    totals.add_turn(turn)
                if parent_id is not None:
                    self._children_usage.setdefault(parent_id, UsageTotals()).add(totals)
                try:
                    # One transaction: the call's end, its usage and its turn.
                    await self.turns.end_call(
                        CallEnd(
                            execution_id,
                            status=status,
                            finished_at=utc_now(),
                            error=error_text,
                            totals=totals,
                            usage=turns,
                            turn=history,
                        )
                    )
                except BaseException as write_error:
                    # The turn was not stored: neither may the in-memory histories keep it.
                    if conversation and history is not None:
                        conversation.roll_back(agent, snapshot)
                    if status == "completed":
                        # Say why the call is not completed, if the database still listens.
                        with contextlib.suppress(Exception):
                            await self.turns.end_call(
                                CallEnd(
                                    execution_id,
                                    status="failed",
                                    finished_at=utc_now(),
                                    # The driver's first line: never SQLAlchemy's text, which
                                    # carries the statement's parameters (message text).
                                    error="its turn could not be stored: "
                                    + driver_message(write_error),
                                    totals=totals,
                                    usage=turns,
                                )
                            )
                    raise
            return result

        return recorded

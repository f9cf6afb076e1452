"""Recording every agent call of a run: its start, and its end with usage and the turn it
added to the session's history, through a `TurnStore`.

Each agent instance's `generate` and `structured` are wrapped (patches/agent_calls.py). The
execution being run is kept in a context variable: a workflow's calls to its children happen
inside it, so children record it as their parent, and asyncio tasks (parallel fan-out)
inherit it. `send` goes through `generate` upstream.

In a durable run (`run_context.current_run`), each call is a call boundary (a cancelled run,
a passed deadline or a lost lease stops there), its start and end are fenced by the run's
lease, and a `generate` call that ended is journaled with its reply in the transaction of its
turn: a later attempt of the run gets the reply back without calling the agent, and without
appending to the histories, which it restored from the session with that turn in them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_agent.db import run_context
from mcp_agent.db.conversations.binding import ConversationBinding
from mcp_agent.db.engine import driver_message
from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.tracking import WORKER_ID
from mcp_agent.db.executions.usage import PriceBook, UsageTotals, usage_turn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.patches import agent_calls
from mcp_agent.db.turns.base import CallEnd, TurnStore

_current_execution = run_context.current_execution


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return repr(value)


def _canonical_call(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """What a call asks, as bytes: the same messages and parameters give the same bytes."""
    return json.dumps(
        [operation, args, kwargs], default=_json_default, sort_keys=True, ensure_ascii=False
    ).encode()


def _replayed_reply(response: dict[str, Any]) -> Any:
    from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart

    return PromptMessageMultipart.model_validate(response["reply"])


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
            scope = run_context.current_run.get()
            fence = call_key = None
            if scope is not None:
                scope.check_boundary(f"the call of {name}")
                fence = scope.fence
                if operation == "generate":
                    call_key = scope.key("call", name, _canonical_call(operation, args, kwargs))
                    stored = scope.replay(call_key)
                    if stored is not None:
                        return _replayed_reply(stored.response)
            execution_id = str(uuid.uuid4())
            parent_id = _current_execution.get()
            conversation = self.conversation
            start = self.turns.start_call(
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
                ),
                fence=fence,
            )
            try:
                await start
            except LeaseLostError as refused:
                if scope is not None:
                    scope.remember(refused)
                raise
            snapshot = conversation.snapshot(agent) if conversation else None
            accumulator = getattr(agent, "usage_accumulator", None)
            turns_before = len(accumulator.turns) if accumulator is not None else 0
            token = _current_execution.set(execution_id)
            agent_token = run_context.current_agent.set(name)
            status, error_text = "completed", None
            history = None
            try:
                result = await call(*args, **kwargs)
                if scope is not None and scope.stopped is not None:
                    # A boundary inside stopped the run and upstream turned that into a
                    # result (a tool's error): not a reply to keep.
                    raise scope.stopped
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
                step = None
                if (
                    scope is not None
                    and call_key is not None
                    and status == "completed"
                    and hasattr(result, "model_dump")
                ):
                    step = scope.step(
                        "call", name, call_key, {"reply": result.model_dump(mode="json")}
                    )
                try:
                    # One transaction: the call's end, its usage, its turn (and its step).
                    await self.turns.end_call(
                        CallEnd(
                            execution_id,
                            status=status,
                            finished_at=utc_now(),
                            error=error_text,
                            totals=totals,
                            usage=turns,
                            turn=history,
                            fence=fence,
                            step=step,
                        )
                    )
                except BaseException as write_error:
                    # The turn was not stored: neither may the in-memory histories keep it.
                    if conversation and history is not None:
                        conversation.roll_back(agent, snapshot)
                    if isinstance(write_error, LeaseLostError):
                        # Another worker holds the run: nothing more may be written for it.
                        if scope is not None:
                            scope.remember(write_error)
                        raise
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
                                    fence=fence,
                                )
                            )
                    raise
            return result

        return recorded

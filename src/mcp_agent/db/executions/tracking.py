"""Recording every agent call of a run: an execution row, and the turn it added to history.

Each agent instance's `generate` and `structured` are wrapped (instance attributes, so
upstream's classes are untouched). The execution being run is kept in a context variable:
a workflow's calls to its children happen inside it, so children record it as their parent,
and asyncio tasks (parallel fan-out) inherit it. `send` goes through `generate` upstream.
"""

from __future__ import annotations

import contextvars
import functools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_agent.db.conversations.binding import ConversationBinding
from mcp_agent.db.executions.base import ExecutionStart, ExecutionStore
from mcp_agent.db.models.types import utc_now

_current_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_execution", default=None
)

#: Identifies this process in fa_executions.worker_id, to find rows left by a dead worker.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def current_execution_id() -> str | None:
    return _current_execution.get()


class RunRecorder:
    """Wraps a running app's agents so each call is recorded."""

    def __init__(
        self,
        executions: ExecutionStore,
        versions: Mapping[str, int | None],
        *,
        conversation: ConversationBinding | None = None,
    ) -> None:
        self.executions = executions
        self.versions = versions
        self.conversation = conversation

    def track(self, agents: Mapping[str, Any]) -> None:
        for name, agent in agents.items():
            for operation in ("generate", "structured"):
                setattr(
                    agent, operation, self._wrap(getattr(agent, operation), name, agent, operation)
                )

    def _wrap(
        self, call: Callable[..., Awaitable[Any]], name: str, agent: Any, operation: str
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(call)
        async def recorded(*args: Any, **kwargs: Any) -> Any:
            execution_id = str(uuid.uuid4())
            conversation = self.conversation
            await self.executions.start(
                ExecutionStart(
                    execution_id=execution_id,
                    parent_execution_id=_current_execution.get(),
                    agent_name=name,
                    agent_version_id=self.versions.get(name),
                    operation=operation,
                    started_at=utc_now(),
                    worker_id=WORKER_ID,
                    session_id=conversation.session_id if conversation else None,
                )
            )
            snapshot = conversation.snapshot(agent) if conversation else None
            token = _current_execution.set(execution_id)
            try:
                result = await call(*args, **kwargs)
                if conversation:
                    await conversation.persist(name, agent, snapshot, execution_id)
            except BaseException as error:
                if conversation:
                    conversation.roll_back(agent, snapshot)
                await self.executions.finish(
                    execution_id, status="failed", finished_at=utc_now(), error=repr(error)
                )
                raise
            finally:
                _current_execution.reset(token)
            await self.executions.finish(execution_id, status="completed", finished_at=utc_now())
            return result

        return recorded

"""Recording every agent call of a run as an execution, with the definition version it ran.

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

from mcp_agent.db.executions.base import ExecutionStart, ExecutionStore
from mcp_agent.db.models.types import utc_now

_current_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_execution", default=None
)

#: Identifies this process in fa_executions.worker_id, to find rows left by a dead worker.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def current_execution_id() -> str | None:
    return _current_execution.get()


def _tracked(
    call: Callable[..., Awaitable[Any]],
    *,
    store: ExecutionStore,
    agent_name: str,
    agent_version_id: int | None,
    operation: str,
    session_id: str | None,
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution_id = str(uuid.uuid4())
        await store.start(
            ExecutionStart(
                execution_id=execution_id,
                parent_execution_id=_current_execution.get(),
                agent_name=agent_name,
                agent_version_id=agent_version_id,
                operation=operation,
                started_at=utc_now(),
                worker_id=WORKER_ID,
                session_id=session_id,
            )
        )
        token = _current_execution.set(execution_id)
        try:
            result = await call(*args, **kwargs)
        except BaseException as error:
            await store.finish(
                execution_id, status="failed", finished_at=utc_now(), error=repr(error)
            )
            raise
        finally:
            _current_execution.reset(token)
        await store.finish(execution_id, status="completed", finished_at=utc_now())
        return result

    return wrapper


def track_executions(
    agents: Mapping[str, Any],
    store: ExecutionStore,
    versions: Mapping[str, int | None],
    *,
    session_id: str | None = None,
) -> None:
    """Wrap the agents of a running app so each call is recorded in `store`."""
    for name, agent in agents.items():
        for operation in ("generate", "structured"):
            setattr(
                agent,
                operation,
                _tracked(
                    getattr(agent, operation),
                    store=store,
                    agent_name=name,
                    agent_version_id=versions.get(name),
                    operation=operation,
                    session_id=session_id,
                ),
            )

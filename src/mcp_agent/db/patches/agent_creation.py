"""A hook that runs right after upstream's `FastAgent.run()` has created the agents.

Upstream handles `--message`, `--prompt-file` and `--server` inside `run()`, between creating
the agents and yielding the app, then exits. A database-backed run must restore histories and
start recording before any of that, so it wraps the factory `run()` calls
(`create_agents_in_dependency_order`, as named in `mcp_agent.core.fastagent`): the run's
callback, held in a context variable, gets the created agents before `run()` goes on.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp_agent.db.patches.attribute import AttributePatch

AgentsCreated = Callable[[dict[str, Any]], Awaitable[None]]

_on_agents_created: contextvars.ContextVar[AgentsCreated | None] = contextvars.ContextVar(
    "fast_agent_db_on_agents_created", default=None
)


def _calling_back(original: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create_agents_in_dependency_order(*args: Any, **kwargs: Any) -> dict[str, Any]:
        agents = await original(*args, **kwargs)
        callback = _on_agents_created.get()
        if callback is None:
            return agents
        try:
            await callback(agents)
        except BaseException:
            # run() has not got the agents yet, so its cleanup would not shut them down.
            for agent in agents.values():
                with contextlib.suppress(Exception):
                    await agent.shutdown()
            raise
        return agents

    return create_agents_in_dependency_order


def _patch() -> AttributePatch:
    from mcp_agent.core import fastagent

    return AttributePatch(fastagent, "create_agents_in_dependency_order", _calling_back)


_PATCH: AttributePatch | None = None


@asynccontextmanager
async def on_agents_created(callback: AgentsCreated) -> AsyncIterator[None]:
    """Within the block, `callback(agents)` runs once upstream's run() has created them."""
    global _PATCH
    if _PATCH is None:
        _PATCH = _patch()
    _PATCH.acquire()
    token = _on_agents_created.set(callback)
    try:
        yield
    finally:
        _on_agents_created.reset(token)
        _PATCH.release()

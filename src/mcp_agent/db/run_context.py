"""What a run is doing right now, as context variables.

Set by the run recorder around each agent call (and by FastAgent.run for the session), read
by the event capture: upstream emits events from tasks created in the calling context, so
they inherit these values and each event can be tagged with its session, execution and agent.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_agent.db.runs.scope import RunScope

current_session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_session", default=None
)
current_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_execution", default=None
)
current_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_agent", default=None
)

#: The durable run being executed (a worker's claimed run), or None: a plain library run. Set
#: by `runs.execution.execute_claimed_run`; read at every call boundary (agent call, provider
#: request, tool call) and by every write of the run, which it fences with its lease.
current_run: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "fast_agent_db_run", default=None
)

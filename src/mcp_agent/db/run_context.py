"""What a run is doing right now, as context variables.

Set by the run recorder around each agent call (and by FastAgent.run for the session), read
by the event capture: upstream emits events from tasks created in the calling context, so
they inherit these values and each event can be tagged with its session, execution and agent.
"""

from __future__ import annotations

import contextvars

current_session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_session", default=None
)
current_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_execution", default=None
)
current_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_agent", default=None
)

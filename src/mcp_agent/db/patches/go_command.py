"""`fast-agent-db go`: upstream's go command, building its FastAgent against the database.

Upstream's go looks `FastAgent` up in its own module when it runs, so that name is pointed at
the database-backed class (with the URL and session given on our command line) while the
command runs.
"""

from __future__ import annotations

import functools
from typing import Any

from mcp_agent.db.patches.attribute import AttributePatch


def database_go(database_url: str, session_id: str | None) -> AttributePatch:
    """A patch of go's `FastAgent`; acquire it before go runs, release it after."""
    from mcp_agent.cli.commands import go

    from mcp_agent.db.fastagent import FastAgent as DatabaseFastAgent

    def build(_upstream_class: Any) -> Any:
        return functools.partial(
            DatabaseFastAgent, database_url=database_url, session_id=session_id
        )

    return AttributePatch(go, "FastAgent", build)

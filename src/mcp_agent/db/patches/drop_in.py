"""The drop-in: upstream's `mcp_agent.core.fastagent.FastAgent` replaced, right after that
module loads, by a subclass of the database-backed FastAgent bound to the configured database.

Installed by the activation (see fast_agent_db_hook and activation.py) only when a database is
configured, for the life of the process: code that imported the name keeps the class it got,
so there is nothing to uninstall.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

#: The session an unchanged script continues, besides its `--session ID` argument.
SESSION_ENV = "FAST_AGENT_SESSION"


def _option_from_argv(flag: str) -> str | None:
    """`--flag VALUE` or `--flag=VALUE` from sys.argv (upstream ignores unknown flags)."""
    for index, argument in enumerate(sys.argv):
        if argument == flag and index + 1 < len(sys.argv):
            return sys.argv[index + 1]
        if argument.startswith(flag + "="):
            return argument.split("=", 1)[1]
    return None


def use_database_fast_agent(module: ModuleType, database_url: str) -> None:
    from mcp_agent.db.fastagent import FastAgent as DatabaseFastAgent

    class FastAgent(DatabaseFastAgent):
        """Upstream's FastAgent, backed by the configured database (fast-agent-db drop-in)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("database_url", database_url)
            kwargs.setdefault(
                "session_id", _option_from_argv("--session") or os.environ.get(SESSION_ENV)
            )
            super().__init__(*args, **kwargs)

    FastAgent.__module__ = module.__name__
    module.FastAgent = FastAgent  # type: ignore[attr-defined]

"""fast-agent-db: fast-agent with a relational database as the source of truth.

This module imports nothing heavy at import time: the public names below load on first use,
so `import mcp_agent.db` stays cheap for processes that never open a database.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_agent.db.errors import (
        DatabaseUnavailableError,
        DatabaseUrlError,
        FastAgentDbError,
        SchemaOutOfDateError,
    )
    from mcp_agent.db.fastagent import FastAgent
    from mcp_agent.db.migration_runner import MigrationRunner
    from mcp_agent.db.runtime import DatabaseRuntime

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "FastAgent": "mcp_agent.db.fastagent",
    "DatabaseRuntime": "mcp_agent.db.runtime",
    "MigrationRunner": "mcp_agent.db.migration_runner",
    "FastAgentDbError": "mcp_agent.db.errors",
    "DatabaseUrlError": "mcp_agent.db.errors",
    "DatabaseUnavailableError": "mcp_agent.db.errors",
    "SchemaOutOfDateError": "mcp_agent.db.errors",
}

__all__ = [
    "DatabaseRuntime",
    "DatabaseUnavailableError",
    "DatabaseUrlError",
    "FastAgent",
    "FastAgentDbError",
    "MigrationRunner",
    "SchemaOutOfDateError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mcp_agent.db' has no attribute {name!r}")
    value = getattr(import_module(module_name), name)
    globals()[name] = value
    return value

"""`fast-agent-db tour`: the main job, end to end on the embedded default database."""

from __future__ import annotations

from mcp_agent.db.cli.db import _status, print_status, upgrade_database
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import console, run_async
from mcp_agent.db.urls import resolve_database_url


def tour(database_url: DatabaseUrlOption = None) -> None:
    """Create (or open) the database, upgrade it, and show what it holds."""
    raw_url = resolve_database_url(database_url)
    console.rule("fast-agent-db tour")
    upgrade_database(raw_url)
    print_status(run_async(_status(raw_url)))

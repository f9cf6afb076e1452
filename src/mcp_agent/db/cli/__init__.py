"""The `fast-agent-db` command line."""

from __future__ import annotations


def main() -> None:
    from mcp_agent.db.cli.app import app

    app()

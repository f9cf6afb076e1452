"""The `fast-agent-db` command line."""

from __future__ import annotations

import sys


def main() -> None:
    from mcp_agent.db.cli.app import app, hoist_go_options

    app(args=hoist_go_options(sys.argv[1:]))

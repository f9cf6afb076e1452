"""`python -m mcp_agent.db.cli`: the fast-agent-db command line."""

from mcp_agent.db.cli import main

main()

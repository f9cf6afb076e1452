"""The REST API of fast-agent-db (`fast-agent-db serve`): `create_app(database_url)`."""

from mcp_agent.db.api.app import create_app

__all__ = ["create_app"]

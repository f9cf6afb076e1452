"""`fast-agent-db serve`: the REST API (mcp_agent.db.api) under uvicorn."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import typer

from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, error_console, fail, run_async
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tokens.sql import SqlTokenStore
from mcp_agent.db.urls import resolve_database_url


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only: localhost or a loopback address.
    Any other name counts as reachable from elsewhere (it may resolve to anything)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _has_active_tokens(raw_url: str) -> bool:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlTokenStore(runtime).has_active_tokens()


def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) "
            "is refused until an API token exists (fast-agent-db tokens create NAME)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
    database_url: DatabaseUrlOption = None,
) -> None:
    """Serve the REST API: settings, providers, models, MCP servers, agents and workflows,
    sessions and runs, executions, usage and the event log.

    Every route but /healthz and /readyz needs `Authorization: Bearer <token>`; OpenAPI at
    /openapi.json, interactive docs at /docs.
    """
    import uvicorn

    from mcp_agent.db.api import create_app
    from mcp_agent.db.api.event_streams import stop_streams

    raw_url = resolve_database_url(database_url)
    has_tokens = run_async(_has_active_tokens(raw_url))
    if not has_tokens:
        if not is_loopback(host):
            fail(
                f"refusing to listen on {host}: no API token is defined, and other machines "
                "can reach that address. Create one first (fast-agent-db tokens create NAME), "
                "or listen on 127.0.0.1.",
                code=EXIT_BAD_INPUT,
            )
        error_console.print(
            "Note: no API token is defined, so every request but /healthz and /readyz will be "
            "refused; create one with: fast-agent-db tokens create NAME",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    app = create_app(raw_url)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Live event streams never end by themselves, and uvicorn waits for every open
            # response before it stops: they end first (runs in progress still finish).
            stop_streams(app)
            await super().shutdown(sockets)

    Server(uvicorn.Config(app, host=host, port=port, log_level=log_level.lower())).run()

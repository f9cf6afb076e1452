"""The root `fast-agent-db` Typer app: one sub-app or command per resource."""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_agent.db import __version__
from mcp_agent.db.cli import agents, config, db, executions, models, servers, sessions
from mcp_agent.db.cli.logs import logs, prune_command
from mcp_agent.db.cli.output import ReportingGroup, console
from mcp_agent.db.cli.run import chat, run
from mcp_agent.db.cli.tour import tour

app = typer.Typer(
    name="fast-agent-db",
    help="fast-agent with a database as the source of truth (PostgreSQL or SQLite).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    cls=ReportingGroup,
)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"fast-agent-db {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """fast-agent with a database as the source of truth."""


app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(servers.app, name="servers")
app.add_typer(models.app, name="models")
app.add_typer(agents.app, name="agents")
app.add_typer(sessions.app, name="sessions")
app.add_typer(executions.app, name="executions")
app.command(name="usage")(executions.usage)
app.command(name="logs")(logs)
app.command(name="prune")(prune_command)
app.command(name="run")(run)
app.command(name="chat")(chat)
app.command(name="tour")(tour)

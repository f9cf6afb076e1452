"""The root `fast-agent-db` Typer app: one sub-app or command per resource."""

from __future__ import annotations

import functools
from typing import Annotated

import typer
from mcp_agent.cli.commands import check_config, quickstart, setup
from mcp_agent.cli.commands import go as upstream_go

from mcp_agent.db import __version__
from mcp_agent.db.cli import agents, config, db, executions, models, servers, sessions
from mcp_agent.db.cli.logs import logs, prune_command
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import ReportingGroup, console
from mcp_agent.db.cli.run import chat, run
from mcp_agent.db.cli.tour import tour
from mcp_agent.db.fastagent import FastAgent as DatabaseFastAgent
from mcp_agent.db.urls import resolve_database_url

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
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
    database_url: DatabaseUrlOption = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="For go: the session to continue (default: a new one)."),
    ] = None,
) -> None:
    """fast-agent with a database as the source of truth.

    Upstream's commands (go, setup, check, bootstrap, quickstart) are here too; `go` runs
    against the database: fast-agent-db --database-url URL --session ID go -m "hello".
    """
    if ctx.invoked_subcommand == "go":
        # Upstream's go looks its FastAgent up in its module when it runs.
        upstream_go.FastAgent = functools.partial(  # type: ignore[assignment]
            DatabaseFastAgent, database_url=resolve_database_url(database_url), session_id=session
        )


# Upstream's own commands, unchanged (go is pointed at the database by the root callback).
app.add_typer(upstream_go.app, name="go", help="Run an agent from the command line (upstream).")
app.add_typer(setup.app, name="setup", help="Set up a new agent project (upstream).")
app.add_typer(check_config.app, name="check", help="Show or diagnose configuration (upstream).")
app.add_typer(quickstart.app, name="bootstrap", help="Create example applications (upstream).")
app.add_typer(quickstart.app, name="quickstart", help="Create example applications (upstream).")
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

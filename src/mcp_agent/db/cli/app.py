"""The root `fast-agent-db` Typer app: one sub-app or command per resource."""

from __future__ import annotations

from typing import Annotated

import typer
from mcp_agent.cli.commands import go as upstream_go
from mcp_agent.cli.commands import quickstart, setup

from mcp_agent.db import __version__
from mcp_agent.db.cli import agents, check, config, db, executions, models, servers, sessions
from mcp_agent.db.cli.logs import logs, prune_command
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import ReportingGroup, console
from mcp_agent.db.cli.run import chat, run
from mcp_agent.db.cli.tour import tour
from mcp_agent.db.patches.go_command import database_go
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
        typer.Option(
            "--session",
            help="For go: the session to continue (default: a new one). Also accepted after go.",
        ),
    ] = None,
) -> None:
    """fast-agent with a database as the source of truth.

    Upstream's commands (go, setup, check, bootstrap, quickstart) are here too; `go` runs
    against the database: fast-agent-db go --database-url URL --session ID -m "hello".
    """
    if ctx.invoked_subcommand == "go":
        patch = database_go(resolve_database_url(database_url), session)
        patch.acquire()
        ctx.call_on_close(patch.release)


# Upstream's own commands, unchanged (go is pointed at the database by the root callback).
app.add_typer(upstream_go.app, name="go", help="Run an agent from the command line (upstream).")
app.add_typer(setup.app, name="setup", help="Set up a new agent project (upstream).")
app.add_typer(check.app, name="check")
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


#: Our options that `go` accepts after its name, though upstream's go does not know them.
_GO_OPTIONS = ("--session", "--database-url")


def hoist_go_options(arguments: list[str]) -> list[str]:
    """`go --session X ...` as `--session X go ...`: upstream's go sub-app refuses options it
    does not define, so ours are moved in front of it, where the root callback reads them."""
    if "go" not in arguments:
        return arguments
    at = arguments.index("go")
    before, after, hoisted = arguments[:at], [], []
    index = at + 1
    while index < len(arguments):
        argument = arguments[index]
        name = argument.split("=", 1)[0]
        if name in _GO_OPTIONS:
            if "=" in argument:
                hoisted.append(argument)
            else:
                hoisted.extend(arguments[index : index + 2])
                index += 1
        else:
            after.append(argument)
        index += 1
    return [*before, *hoisted, "go", *after]

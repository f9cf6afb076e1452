"""The root `fast-agent-db` Typer app: one sub-app or command per resource, each imported
only when it is the command being run (`sessions list` does not import upstream's go)."""

from __future__ import annotations

import importlib
from typing import Annotated, NamedTuple

import click
import typer

from mcp_agent.db.cli.options import DatabaseUrlOption, session_option
from mcp_agent.db.cli.output import ReportingGroup, console
from mcp_agent.db.urls import resolve_database_url


class LazyCommand(NamedTuple):
    """Where a command is defined: a Typer sub-app, or a function made into one command."""

    module: str
    attribute: str
    #: Replaces the sub-app's own help (upstream's sub-apps say nothing of the database).
    help: str | None = None


#: Every command, in the order help lists them: upstream's own, then ours by resource.
COMMANDS: dict[str, LazyCommand] = {
    "go": LazyCommand(
        "mcp_agent.cli.commands.go", "app", "Run an agent from the command line (upstream)."
    ),
    "setup": LazyCommand(
        "mcp_agent.cli.commands.setup", "app", "Set up a new agent project (upstream)."
    ),
    "check": LazyCommand("mcp_agent.db.cli.check", "app"),
    "bootstrap": LazyCommand(
        "mcp_agent.cli.commands.quickstart", "app", "Create example applications (upstream)."
    ),
    "quickstart": LazyCommand(
        "mcp_agent.cli.commands.quickstart", "app", "Create example applications (upstream)."
    ),
    "db": LazyCommand("mcp_agent.db.cli.db", "app"),
    "config": LazyCommand("mcp_agent.db.cli.config", "app"),
    "servers": LazyCommand("mcp_agent.db.cli.servers", "app"),
    "models": LazyCommand("mcp_agent.db.cli.models", "app"),
    "agents": LazyCommand("mcp_agent.db.cli.agents", "app"),
    "sessions": LazyCommand("mcp_agent.db.cli.sessions", "app"),
    "executions": LazyCommand("mcp_agent.db.cli.executions", "app"),
    "usage": LazyCommand("mcp_agent.db.cli.executions", "usage"),
    "logs": LazyCommand("mcp_agent.db.cli.logs", "logs"),
    "prune": LazyCommand("mcp_agent.db.cli.logs", "prune_command"),
    "run": LazyCommand("mcp_agent.db.cli.run", "run"),
    "chat": LazyCommand("mcp_agent.db.cli.run", "chat"),
    "tour": LazyCommand("mcp_agent.db.cli.tour", "tour"),
    "serve": LazyCommand("mcp_agent.db.cli.serve", "serve"),
    "tokens": LazyCommand("mcp_agent.db.cli.tokens", "app"),
    "webhooks": LazyCommand("mcp_agent.db.cli.webhooks", "app"),
    "runs": LazyCommand("mcp_agent.db.cli.runs", "app"),
    "worker": LazyCommand("mcp_agent.db.cli.worker", "worker"),
}


def load_command(name: str) -> click.Command:
    """Import the module defining command `name` and build its click command."""
    where = COMMANDS[name]
    target = getattr(importlib.import_module(where.module), where.attribute)
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode="rich")
        single.command(name=name)(target)
        command = typer.main.get_command(single)
    command.name = name
    if where.help is not None:
        command.help = where.help
        command.short_help = where.help
    return command


class RootGroup(ReportingGroup):
    """The root group: commands are built on first use, from `COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="fast-agent-db",
    help="fast-agent with a database as the source of truth (PostgreSQL or SQLite).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    cls=RootGroup,
)


def _print_version(value: bool) -> None:
    if value:
        from mcp_agent.db import __version__

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
        session_option(
            "The session: for go, run and chat the one to continue (default: a new one); "
            "for logs and usage the filter. The command's own --session wins."
        ),
    ] = None,
) -> None:
    """fast-agent with a database as the source of truth.

    Upstream's commands (go, setup, check, bootstrap, quickstart) are here too; `go` runs
    against the database: fast-agent-db go --database-url URL --session ID -m "hello".
    --database-url and --session given before a command apply to it (its own win).
    """
    if ctx.invoked_subcommand == "go":
        from mcp_agent.db.patches.go_command import database_go

        patch = database_go(resolve_database_url(database_url), session)
        patch.acquire()
        ctx.call_on_close(patch.release)


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

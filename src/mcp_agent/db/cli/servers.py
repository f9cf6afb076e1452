"""`fast-agent-db servers ...`: MCP servers stored in the database."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mcp_agent.db.cli.config import EncryptOption, load_settings, print_changes, update_settings
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.settings import edits, secrets
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="MCP servers: list, add, remove.", no_args_is_help=True)


def _pairs(values: list[str], option: str) -> dict[str, str] | None:
    if not values:
        return None
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, entry = value.partition("=")
        if not sep or not name:
            fail(f"{option} {value!r}: expected NAME=VALUE", code=EXIT_BAD_INPUT)
        pairs[name] = entry
    return pairs


@app.command("list")
def list_(database_url: DatabaseUrlOption = None) -> None:
    """List the MCP servers."""
    document = run_async(load_settings(resolve_database_url(database_url)))
    table = Table(title="MCP servers")
    for column in ("name", "transport", "command / url", "env", "description"):
        table.add_column(column)
    for name, server in document.servers.items():
        target = server.url or " ".join([server.command or "", *(server.args or [])]).strip()
        env = ", ".join(f"{key}={secrets.mask(value)}" for key, value in (server.env or {}).items())
        table.add_row(name, server.transport, target, env, server.description or "")
    console.print(table)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The server's name, as agents refer to it.")],
    transport: Annotated[str, typer.Option(help="stdio, sse or http.")] = "stdio",
    command: Annotated[str | None, typer.Option(help="stdio: the program to run.")] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="stdio: one argument (repeatable).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="sse/http: the server URL.")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE (repeatable). Secret-named values must be env:VAR refs."),
    ] = None,
    header: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (repeatable).")] = None,
    cwd: Annotated[str | None, typer.Option(help="stdio: working directory.")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    read_timeout_seconds: Annotated[int | None, typer.Option()] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a server of this name.")
    ] = False,
    encrypt_secrets: EncryptOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Add an MCP server."""
    fields: dict[str, Any] = {
        "transport": transport,
        "command": command,
        "args": arg or None,
        "url": url,
        "env": _pairs(env or [], "--env"),
        "headers": _pairs(header or [], "--header"),
        "cwd": cwd,
        "description": description,
        "read_timeout_seconds": read_timeout_seconds,
    }
    fields = {key: value for key, value in fields.items() if value is not None}
    changes = run_async(
        update_settings(
            resolve_database_url(database_url),
            lambda document: edits.add_server(
                document, name, fields, replace=replace, encrypt_literals=encrypt_secrets
            ),
        )
    )
    print_changes(changes)


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The server to remove.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove an MCP server (refused while an agent uses it)."""
    changes = run_async(
        update_settings(
            resolve_database_url(database_url), lambda document: edits.remove_server(document, name)
        )
    )
    print_changes(changes)

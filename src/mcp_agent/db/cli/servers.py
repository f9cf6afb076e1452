"""`fast-agent-db servers ...`: MCP servers stored in the database."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mcp_agent.db.cli.config import EncryptOption, load_settings, print_changes, update_settings
from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
    write_data,
)
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, fail, run_async
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import document_to_display
from mcp_agent.db.settings.yaml_files import dump_yaml
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="MCP servers: list, show, add, remove.", no_args_is_help=True)


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


def _displayed_servers(database_url: str | None) -> dict[str, dict[str, Any]]:
    """Each server's fields as `config show` shows them: references, secrets masked."""
    document = run_async(load_settings(resolve_database_url(database_url)))
    return document_to_display(document).get("mcp", {}).get("servers", {})


def _target(server: dict[str, Any]) -> str:
    command = [server.get("command") or "", *(server.get("args") or [])]
    return server.get("url") or " ".join(str(part) for part in command).strip()


@app.command("list")
def list_(
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the MCP servers (secrets shown as references or masked)."""
    chosen = chosen_format(json_flag, output_format)
    servers = _displayed_servers(database_url)
    rows = [{"name": name, **server} for name, server in servers.items()]
    print_rows(
        rows,
        [
            Column("name", lambda server: server["name"], typed=True),
            Column("transport", lambda server: server.get("transport", "stdio")),
            Column("command / url", _target),
            Column(
                "env",
                lambda server: ", ".join(
                    f"{key}={value}" for key, value in (server.get("env") or {}).items()
                ),
            ),
            Column("description", lambda server: server.get("description") or ""),
        ],
        title="MCP servers",
        output_format=chosen,
        wide=wide,
    )


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The server to show.")],
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one MCP server as YAML (secrets shown as references or masked)."""
    chosen = chosen_format(json_flag, output_format)
    servers = _displayed_servers(database_url)
    if name not in servers:
        known = ", ".join(sorted(servers)) or "none"
        fail(
            f"mcp.servers.{name}: no MCP server with this name (there are: {known})",
            code=EXIT_BAD_INPUT,
        )
    if chosen is OutputFormat.JSON:
        print_document({"name": name, **servers[name]}, chosen)
    else:
        write_data(dump_yaml({name: servers[name]}))


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
        typer.Option(
            help="NAME=VALUE (repeatable). Secret values must be references (env:VAR, "
            "${VAR}, a template such as 'Bearer ${VAR}'), or use --encrypt-secrets."
        ),
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

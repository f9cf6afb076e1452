"""`fast-agent-db tokens ...`: bearer tokens of the REST API (`fast-agent-db serve`)."""

from __future__ import annotations

from typing import Annotated

import typer

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
from mcp_agent.db.cli.output import console, error_console, run_async
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tokens.base import ApiToken, CreatedToken
from mcp_agent.db.tokens.sql import SqlTokenStore
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(
    help="API tokens of the REST API (fast-agent-db serve): create, list, revoke.",
    no_args_is_help=True,
)


def _when(token_time: object) -> str:
    return "" if token_time is None else f"{token_time:%Y-%m-%d %H:%M:%S}"


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What or who the token is for, e.g. ci or designer.")],
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create a token. Its value is printed this once (stdout); only its hash is stored."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> CreatedToken:
        async with await DatabaseRuntime.open(resolve_database_url(database_url)) as runtime:
            return await SqlTokenStore(runtime).create(name)

    created = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document({**created.token.model_dump(), "value": created.value}, chosen)
        return
    error_console.print(
        f"Created token {created.token.token_id} ({created.token.name}). Its value follows; "
        "it is shown this once and cannot be recovered (the database keeps only its hash). "
        "Send it as: Authorization: Bearer <value>",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    write_data(created.value)


@app.command("list")
def list_(
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked tokens too.")] = False,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List tokens (never their values), oldest first."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> list[ApiToken]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            return await SqlTokenStore(runtime).list(include_revoked=include_revoked)

    tokens = run_async(work())
    print_rows(
        tokens,
        [
            Column("id", lambda token: token.token_id, typed=True),
            Column("name", lambda token: token.name, typed=True),
            Column("created (UTC)", lambda token: _when(token.created_at)),
            Column("last used (UTC)", lambda token: _when(token.last_used_at)),
            Column("revoked (UTC)", lambda token: _when(token.revoked_at)),
        ],
        title="API tokens",
        output_format=chosen,
        wide=wide,
        # Every field, null when unset (docs/cli-output.md), times with their offset.
        document=[token.model_dump() for token in tokens],
    )


@app.command()
def revoke(
    token: Annotated[
        str, typer.Argument(help="The token's id, or its name when one active token has it.")
    ],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Revoke a token: requests carrying it are refused from now on."""

    async def work() -> ApiToken:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            return await SqlTokenStore(runtime).revoke(token)

    revoked = run_async(work())
    console.print(f"Revoked token {revoked.token_id} ({revoked.name}).", markup=False)

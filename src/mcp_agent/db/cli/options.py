"""Options every database command takes, and parsers that hold values to what the database
stores (`mcp_agent.db.limits`), so a bad value is a usage error naming the option on both
backends instead of a database error on one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from mcp_agent.db.errors import InputError
from mcp_agent.db.limits import (
    AGENT_NAME_MAX_LENGTH,
    EXECUTION_ID_MAX_LENGTH,
    MODEL_NAME_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
    check_text,
)
from mcp_agent.db.urls import DATABASE_URL_ENV, resolve_database_url

#: Where `ctx.meta` keeps the `--database-url` a command was given, for the error handler.
DATABASE_URL_META_KEY = "fast_agent_db.database_url"


def _remember_database_url(ctx: typer.Context, value: str | None) -> str | None:
    # Context.meta is shared by a command and its parents, so the root's error handler can
    # name the database a failed command was using.
    ctx.meta[DATABASE_URL_META_KEY] = value
    return value


def database_url_in_use(meta: dict[str, object]) -> str | None:
    """The URL the current command resolved (option, environment, default), if it takes one."""
    if DATABASE_URL_META_KEY not in meta:
        return None
    given = meta[DATABASE_URL_META_KEY]
    return resolve_database_url(given if isinstance(given, str) else None)


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        show_envvar=True,
        help="Database URL: postgresql://user:pass@host/db or sqlite:///file.db. "
        "Default: ./fastagent.db (SQLite).",
        show_default=False,
        callback=_remember_database_url,
    ),
]


def bounded_text(max_length: int | None) -> Callable[[str], str]:
    """A Typer `parser` refusing text the database cannot store: a NUL character, or more
    than `max_length` characters (the column's length)."""

    def parse(value: str) -> str:
        try:
            return check_text(value, field="value", max_length=max_length)
        except InputError as error:
            raise typer.BadParameter(error.reason) from None

    return parse


session_id_text = bounded_text(SESSION_ID_MAX_LENGTH)
agent_name_text = bounded_text(AGENT_NAME_MAX_LENGTH)
execution_id_text = bounded_text(EXECUTION_ID_MAX_LENGTH)
model_name_text = bounded_text(MODEL_NAME_MAX_LENGTH)
#: Free text (a message, a filter): only NUL is refused.
plain_text = bounded_text(None)

#: Filters shared by the commands that read the event log and the executions.
SessionFilterOption = Annotated[
    str | None, typer.Option("--session", help="Only this session.", parser=session_id_text)
]
AgentFilterOption = Annotated[
    str | None, typer.Option("--agent", help="Only this agent.", parser=agent_name_text)
]

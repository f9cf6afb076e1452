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
#: Where `ctx.meta` keeps the options given before the command (`fast-agent-db --database-url
#: URL sessions list`), which every command takes as its own when it is not given its own.
GLOBAL_DATABASE_URL_META_KEY = "fast_agent_db.global_database_url"
GLOBAL_SESSION_META_KEY = "fast_agent_db.global_session"

#: One precedence for the database, documented in every command's help and the README.
DATABASE_URL_PRECEDENCE = (
    "the command's --database-url, else the one before the command, else "
    f"{DATABASE_URL_ENV}, else ./fastagent.db (SQLite)"
)


def _is_root(ctx: typer.Context) -> bool:
    return ctx.parent is None


def _remember_database_url(ctx: typer.Context, value: str | None) -> str | None:
    # Context.meta is shared by a command and its parents: the root's option (parsed before
    # the command's context exists) is the default of every command's own, and the root's
    # error handler can name the database a failed command was using. The environment
    # variable is read last, by resolve_database_url, so it never beats an option given
    # before the command (Click would otherwise hand it to the command's own option).
    if _is_root(ctx):
        ctx.meta[GLOBAL_DATABASE_URL_META_KEY] = value
        return value
    if value is None:
        value = ctx.meta.get(GLOBAL_DATABASE_URL_META_KEY)
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
        help="Database URL: postgresql://user:pass@host/db or sqlite:///file.db. "
        f"Used: {DATABASE_URL_PRECEDENCE}.",
        show_default=False,
        callback=_remember_database_url,
    ),
]


def _remember_session(ctx: typer.Context, value: str | None) -> str | None:
    # As the database URL: `fast-agent-db --session ID logs` is `logs --session ID`.
    if _is_root(ctx):
        ctx.meta[GLOBAL_SESSION_META_KEY] = value
        return value
    return value if value is not None else ctx.meta.get(GLOBAL_SESSION_META_KEY)


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


def session_option(help_text: str) -> typer.models.OptionInfo:
    """A command's `--session`, defaulting to the one given before the command."""
    return typer.Option(
        "--session", help=help_text, parser=session_id_text, callback=_remember_session
    )


SessionFilterOption = Annotated[str | None, session_option("Only this session.")]
AgentFilterOption = Annotated[
    str | None, typer.Option("--agent", help="Only this agent.", parser=agent_name_text)
]

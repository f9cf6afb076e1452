"""Console output shared by the commands, and the one place errors become exit codes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from mcp_agent.db.cli.options import database_url_in_use
from mcp_agent.db.conversations.sql import SessionError
from mcp_agent.db.definitions.specs import DefinitionError
from mcp_agent.db.engine import describe_database_error
from mcp_agent.db.errors import DatabaseUrlError, FastAgentDbError, InputError
from mcp_agent.db.limits import NUL
from mcp_agent.db.settings.document import ConfigError

console = Console()
error_console = Console(stderr=True)

_T = TypeVar("_T")

#: Exit codes: 1 for a failure while working, 2 for bad input (as Click uses for usage errors).
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

#: Errors that mean the input was wrong, reported with EXIT_BAD_INPUT.
_BAD_INPUT = (DatabaseUrlError, InputError, ConfigError, DefinitionError, SessionError)
#: Errors the root group turns into a message: ours, and the database's (never shown raw).
_REPORTED = (FastAgentDbError, SQLAlchemyError, sqlite3.Error)


def fail(message: str, *, code: int = EXIT_FAILURE) -> NoReturn:
    # The message is plain text, never markup: it quotes user input and driver messages, whose
    # square brackets rich would otherwise take for style tags.
    error_console.print(
        Text.assemble(("Error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's coroutine: the one event loop of a CLI invocation."""
    return asyncio.run(coroutine)


def _reported_error(error: BaseException) -> BaseException | None:
    """The error to report: `error`, or the first reportable one inside an exception group
    (task groups wrap what their tasks raised); None when it is not ours to report."""
    if isinstance(error, _REPORTED):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _reported_error(inner)
            if found is not None:
                return found
    return None


def _nul_argument_problem(arguments: list[str]) -> str | None:
    """What is wrong with the first command-line argument holding a NUL character, naming its
    option when there is one; None when there is none."""
    for index, argument in enumerate(arguments):
        if NUL not in argument:
            continue
        if argument.startswith("-") and "=" in argument:
            where = argument.split("=", 1)[0]
        elif index > 0 and arguments[index - 1].startswith("-"):
            where = arguments[index - 1]
        else:
            shown = argument if len(argument) <= 40 else argument[:40] + "…"
            where = f"the argument {shown!r}"
        return f"{where}: the value contains a NUL character (\\0), which the database cannot store"
    return None


class ReportingGroup(TyperGroup):
    """Root command group: errors become a clear message and an exit code, no traceback.

    Bad input (a URL, a config file, a value the database cannot hold) exits 2; a failure
    while working exits 1. Database errors are described by `describe_database_error`: the
    database (redacted) and the driver's first line, never SQLAlchemy's text, which carries
    the statement and its parameters.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Every argument of every command, checked once here: no command can store a NUL.
        problem = _nul_argument_problem(args)
        if problem is not None:
            fail(problem, code=EXIT_BAD_INPUT)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as raised:
            error = _reported_error(raised)
            if error is None:
                raise
            if not isinstance(error, FastAgentDbError):
                error = describe_database_error(error, database_url_in_use(ctx.meta))
            code = EXIT_BAD_INPUT if isinstance(error, _BAD_INPUT) else EXIT_FAILURE
            fail(str(error), code=code)

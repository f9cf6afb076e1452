"""Console output shared by the commands, and the one place errors become exit codes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console, ConsoleDimensions
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from mcp_agent.db.cli.options import database_url_in_use
from mcp_agent.db.engine import describe_database_error
from mcp_agent.db.errors import (
    ConfigError,
    DatabaseUrlError,
    DefinitionError,
    DuplicateRunError,
    FastAgentDbError,
    InputError,
    SessionError,
    UnknownValueError,
)
from mcp_agent.db.limits import NUL

#: How wide output is when it does not go to a terminal: lines are never wrapped or cut.
UNWRAPPED_WIDTH = 100_000


class CommandConsole(Console):
    """A rich console that styles and fits its output only when it writes to a terminal.

    Redirected to a file or a pipe, rich would wrap at 80 columns (corrupting JSON, YAML and
    long ids); here every line is written whole instead, and without colour (rich already
    leaves colour out when the stream is not a terminal).
    """

    @property
    def size(self) -> ConsoleDimensions:
        measured = super().size
        if self.is_terminal:
            return measured
        return ConsoleDimensions(UNWRAPPED_WIDTH, measured.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def heading(self, title: str) -> None:
        """A section heading: a rule across a terminal, one plain line elsewhere."""
        if self.is_terminal:
            self.rule(title)
        else:
            self.print(f"== {title} ==", markup=False, highlight=False)


console = CommandConsole()
error_console = CommandConsole(stderr=True)

_T = TypeVar("_T")

#: Exit codes: 1 for a failure while working, 2 for bad input (as Click uses for usage errors).
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

#: Errors that mean the input was wrong, reported with EXIT_BAD_INPUT.
_BAD_INPUT = (
    DatabaseUrlError,
    InputError,
    ConfigError,
    DefinitionError,
    DuplicateRunError,
    SessionError,
    UnknownValueError,
)
#: Errors the root group turns into a message: ours, and the database's (never shown raw).
_REPORTED = (FastAgentDbError, SQLAlchemyError, sqlite3.Error)


def fail(message: str, *, code: int = EXIT_FAILURE) -> NoReturn:
    # The message is plain text, never markup: it quotes user input and driver messages, whose
    # square brackets rich would otherwise take for style tags.
    error_console.print(
        Text.assemble(("Error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def confirm_or_stop(question: str, *, yes: bool, what: str) -> None:
    """Go ahead with a destructive change only when the user agreed: `--yes`, or an answer on
    a terminal. Without a terminal to ask on, stop (a script must say --yes)."""
    if yes:
        return
    # sys.stdin is None when the process was started with descriptor 0 closed.
    if sys.stdin is None or not sys.stdin.isatty():
        fail(
            f"{what}, and there is no terminal to ask on: pass --yes to go ahead "
            "(or --dry-run to only count). Nothing was changed.",
            code=EXIT_BAD_INPUT,
        )
    if not typer.confirm(question, default=False):
        fail("Cancelled. Nothing was changed.")


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

"""Console output shared by the commands, and the one place errors become exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from mcp_agent.db.conversations.sql import SessionError
from mcp_agent.db.definitions.specs import DefinitionError
from mcp_agent.db.errors import DatabaseUrlError, FastAgentDbError
from mcp_agent.db.settings.document import ConfigError

console = Console()
error_console = Console(stderr=True)

_T = TypeVar("_T")

#: Exit codes: 1 for a failure while working, 2 for bad input (as Click uses for usage errors).
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def fail(message: str, *, code: int = EXIT_FAILURE) -> NoReturn:
    error_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's coroutine: the one event loop of a CLI invocation."""
    return asyncio.run(coroutine)


class ReportingGroup(TyperGroup):
    """Root command group: our errors become a clear message and an exit code, no traceback.

    Bad input (a URL, a config file, a key) exits 2; a failure while working exits 1.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DatabaseUrlError, ConfigError, DefinitionError, SessionError) as error:
            fail(str(error), code=EXIT_BAD_INPUT)
        except FastAgentDbError as error:
            fail(str(error))

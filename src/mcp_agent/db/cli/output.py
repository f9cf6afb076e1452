"""Console output shared by the commands, and the one place errors become exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from mcp_agent.db.errors import DatabaseUrlError, FastAgentDbError

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
    """Run a command's coroutine; our errors become a clear message and an exit code."""
    try:
        return asyncio.run(coroutine)
    except DatabaseUrlError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    except FastAgentDbError as error:
        fail(str(error))

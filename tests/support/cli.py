"""Invoking the fast-agent-db CLI from tests, sync or async."""

from __future__ import annotations

import asyncio

from click.testing import Result
from typer.testing import CliRunner

from mcp_agent.db.cli.app import app

_runner = CliRunner()


def invoke(*args: str) -> Result:
    return _runner.invoke(app, list(args))


async def ainvoke(*args: str) -> Result:
    """From an async test: the CLI runs its own event loop, so it gets its own thread."""
    return await asyncio.to_thread(invoke, *args)

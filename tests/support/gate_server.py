"""A stdio MCP server whose tool `wait` blocks until the test opens its gate: a tool call that
is in flight while a test kills (or stops) the worker that made it.

Directory: the environment variable GATE_DIR. Each call appends its label to `calls.log`, then
waits for the file `open` to exist, and answers `passed <label>`.

    python tests/support/gate_server.py
"""

# No `from __future__ import annotations`: FastMCP reads the tool's annotations as classes.
import asyncio
import os
from pathlib import Path

from mcp.server.fastmcp import FastMCP

server = FastMCP("gate")


@server.tool()
async def wait(label: str) -> str:
    """Wait until the gate is open, then answer."""
    gate = Path(os.environ["GATE_DIR"])
    with (gate / "calls.log").open("a") as log:
        log.write(label + "\n")
    while not (gate / "open").exists():
        await asyncio.sleep(0.05)
    return f"passed {label}"


if __name__ == "__main__":
    server.run()

"""A small stdio MCP server for the tour, the examples and the tests.

Run it as `python -m mcp_agent.db.tour.calculator_server`.
"""

from mcp.server.fastmcp import FastMCP

server = FastMCP("calculator")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return f"echo:{text}"


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait, then answer: a tool call that is still running when a test kills the agent."""
    import asyncio

    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def env_var(name: str) -> str:
    """The value of an environment variable of the server process (tests secret resolution)."""
    import os

    return os.environ.get(name, "<unset>")


if __name__ == "__main__":
    server.run()

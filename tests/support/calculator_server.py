"""A small stdio MCP server for tests: arithmetic and an echo tool."""

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


if __name__ == "__main__":
    server.run()

"""Upstream fast-agent's own features work under our locked dependency set (Python 3.11).

Each check runs in a subprocess, as a user would run upstream: import, `fast-agent --help`,
a passthrough agent turn, and a call to a tool of a real stdio MCP server.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_agent.db.tour import calculator_server

SUPPORT = Path(__file__).parent / "support"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_upstream_package_imports_completely() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, mcp_agent
        failed = []
        for module in pkgutil.walk_packages(mcp_agent.__path__, "mcp_agent."):
            if ".resources.examples" in module.name or module.name.startswith("mcp_agent.db"):
                continue
            try:
                importlib.import_module(module.name)
            except Exception as error:
                failed.append(f"{module.name}: {error!r}")
        print("\\n".join(failed) or "ALL-IMPORTED")
        """
    )
    result = _run([sys.executable, "-c", script], cwd=SUPPORT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ALL-IMPORTED"


def test_upstream_cli_help() -> None:
    result = _run([str(BIN / "fast-agent"), "--help"], cwd=SUPPORT)
    assert result.returncode == 0, result.stderr
    assert "go" in result.stdout and "setup" in result.stdout


def test_passthrough_turn_and_stdio_tool_call(tmp_path: Path) -> None:
    (tmp_path / "fastagent.config.yaml").write_text(
        textwrap.dedent(
            f"""
            default_model: passthrough
            logger: {{type: none, progress_display: false, show_chat: false, show_tools: false}}
            mcp:
              servers:
                calculator:
                  command: {sys.executable}
                  args: [{Path(calculator_server.__file__)}]
            """
        )
    )
    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            from mcp_agent.core.fastagent import FastAgent

            fast = FastAgent("upstream-check", parse_cli_args=False)

            @fast.agent(name="calc", servers=["calculator"])
            async def main():
                async with fast.run() as app:
                    print("ECHO:", await app.calc.send("hello there"))
                    call = '***CALL_TOOL calculator-add {"a": 2, "b": 40}'
                    print("TOOL:", await app.calc.send(call))

            asyncio.run(main())
            """
        )
    )
    result = _run([sys.executable, "agent.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ECHO: hello there" in result.stdout
    assert "TOOL: 42" in result.stdout

"""A database set up to run a stored agent offline: the fake OpenAI server as the provider,
the calculator MCP server, and an `assistant` that may call it (for the API's run tests)."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp_agent.db.tour import calculator_server
from tests.support.cli import ainvoke

CALCULATOR = Path(calculator_server.__file__)
#: A message the fake model answers with a call of the calculator's add tool.
TOOL_CALL_MESSAGE = 'CALL calculator-add {"a": 2, "b": 3}'


async def configure_assistant(database_url: str, base_url: str, tmp_path: Path) -> None:
    """Settings and an `assistant` definition (model generic.fake-model at `base_url`, the
    calculator server) stored with the CLI, as a user would."""
    for args in (
        ["config", "set", "default_model", "generic.fake-model"],
        ["config", "set", "generic.base_url", base_url],
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
        ["config", "set", "logger.show_tools", "false"],
        ["servers", "add", "calculator", "--command", sys.executable, "--arg", str(CALCULATOR)],
        ["models", "set-price", "generic/fake-model", "--input", "2", "--output", "8"],
    ):
        result = await ainvoke(*args, "--database-url", database_url)
        assert result.exit_code == 0, result.output
    bundle = tmp_path / "assistant.yaml"
    bundle.write_text(
        "agents:\n"
        "  - {name: assistant, type: agent, servers: [calculator]}\n"
        "  - {name: echo, type: agent, model: passthrough}\n"
        "  - {name: pipeline, type: chain, sequence: [assistant, echo]}\n"
    )
    result = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)
    assert result.exit_code == 0, result.output

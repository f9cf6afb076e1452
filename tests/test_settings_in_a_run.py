"""A fast-agent run against a database takes its settings from the database."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import mcp_agent.config as upstream_config
import pytest
from mcp_agent.core.fastagent import FastAgent as UpstreamFastAgent

from mcp_agent.db import FastAgent
from mcp_agent.db.tour import calculator_server
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

SUPPORT = Path(__file__).parent / "support"


def _no_config_file_above(directory: Path) -> bool:
    return not any(
        (parent / name).exists()
        for parent in (directory, *directory.parents)
        for name in ("fastagent.config.yaml", "fastagent.secrets.yaml")
    )


@pytest.fixture
def restore_upstream_settings():
    saved = upstream_config._settings
    yield
    upstream_config._settings = saved


async def test_precedence_database_then_environment_and_files_are_ignored(
    database_url, tmp_path, monkeypatch, restore_upstream_settings
) -> None:
    assert (
        await ainvoke(
            "config", "set", "default_model", "passthrough", "--database-url", database_url
        )
    ).exit_code == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fastagent.config.yaml").write_text(
        "default_model: haiku\nmcp:\n  servers:\n    from_file: {command: python}\n"
    )
    monkeypatch.setenv("DEFAULT_MODEL", "sonnet")  # loses to the database
    monkeypatch.setenv("LOGGER__LEVEL", "error")  # the database does not set it: env fills in

    from_database = FastAgent("precedence", database_url=database_url, parse_cli_args=False)
    assert from_database.config["default_model"] == "passthrough"
    assert from_database.config["logger"]["level"] == "error"
    assert "from_file" not in from_database.config["mcp"]["servers"]
    assert from_database.app._config_or_path.default_model == "passthrough"
    # The database section names the database, with any password redacted.
    assert from_database.config["database"]["url"].startswith(("sqlite", "postgresql"))

    # Without a database, upstream's own order: the file beats the environment.
    upstream_config._settings = None
    from_files = UpstreamFastAgent("precedence", parse_cli_args=False)
    assert from_files.config["default_model"] == "haiku"
    assert "from_file" in from_files.config["mcp"]["servers"]


@pytest.mark.slow
async def test_passthrough_agent_calls_a_tool_of_a_server_that_exists_only_in_the_database(
    database_url, tmp_path
) -> None:
    assert _no_config_file_above(tmp_path), "a YAML file above the test directory would leak in"
    for args in (
        [
            "servers",
            "add",
            "calculator",
            "--command",
            sys.executable,
            "--arg",
            str(Path(calculator_server.__file__)),
            "--env",
            "API_TOKEN=env:FA_TOOL_TOKEN",
        ],
        ["config", "set", "default_model", "passthrough"],
        ["config", "set", "logger.type", "none"],
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
        ["config", "set", "logger.show_tools", "false"],
    ):
        result = await ainvoke(*args, "--database-url", database_url)
        assert result.exit_code == 0, result.output

    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from mcp_agent.db import FastAgent

            fast = FastAgent("db-only", database_url=os.environ["DB_URL"], parse_cli_args=False)

            @fast.agent(name="calc", servers=["calculator"])
            async def main():
                async with fast.run() as app:
                    add = '***CALL_TOOL calculator-add {"a": 20, "b": 22}'
                    print("TOOL:", await app.calc.send(add))
                    env = '***CALL_TOOL calculator-env_var {"name": "API_TOKEN"}'
                    print("ENV:", await app.calc.send(env))

            asyncio.run(main())
            """
        )
    )
    environment = {**os.environ, "DB_URL": database_url, "FA_TOOL_TOKEN": "tool-secret-42"}
    result = run_guarded(
        [sys.executable, "agent.py"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "TOOL: 42" in result.stdout
    # The env:FA_TOOL_TOKEN reference was resolved when the server was launched.
    assert "ENV: tool-secret-42" in result.stdout
    assert not list(tmp_path.glob("*.yaml"))

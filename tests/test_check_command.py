"""`fast-agent-db check` shows the database when one is configured, upstream's check when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_agent.db.migration_runner import head_revision
from tests.support.cli import ainvoke


async def test_check_shows_the_database_its_schema_settings_and_servers(database_url: str) -> None:
    url = ["--database-url", database_url]
    for args in (
        ["config", "set", "default_model", "passthrough"],
        ["config", "set", "openai.api_key", "env:CHECK_TEST_OPENAI_KEY"],
        ["servers", "add", "tools", "--command", "python", "--arg", "server.py"],
    ):
        result = await ainvoke(*args, *url)
        assert result.exit_code == 0, result.output
    shown = await ainvoke("check", *url)
    assert shown.exit_code == 0, shown.output
    output = " ".join(shown.output.split())
    assert "Database: " in output and "Config File" not in output
    assert f"Schema revision: {head_revision()} (current)" in output
    assert "Settings: the database" in output and "Default model: passthrough" in output
    assert "openai" in output and "CHECK_TEST_OPENAI_KEY" in output
    assert "tools" in output and "python server.py" in output


async def test_check_says_when_the_database_holds_no_settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shown = await ainvoke("check", "--database-url", database_url)
    assert shown.exit_code == 0, shown.output
    assert "none stored" in " ".join(shown.output.split())


async def test_check_without_a_database_is_upstreams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAST_AGENT_DATABASE_URL", raising=False)
    shown = await ainvoke("check")
    assert shown.exit_code == 0, shown.output
    assert "System Information" in shown.output and "Database:" not in shown.output
    assert not (tmp_path / "fastagent.db").exists()

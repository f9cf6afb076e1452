"""`fast-agent-db db ...` and `tour` through the real command line app."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from mcp_agent.db.cli.app import app
from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.migration_runner import head_revision
from mcp_agent.db.urls import DATABASE_URL_ENV

runner = CliRunner()


def test_tour_creates_the_default_embedded_database(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    result = runner.invoke(app, ["tour"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fastagent.db").exists()
    assert f"Schema revision: {head_revision()}" in result.output
    assert "fa_messages" in result.output and "fa_events" in result.output


def test_upgrade_status_current_downgrade(empty_database_url: str) -> None:
    url = ["--database-url", empty_database_url]
    result = runner.invoke(app, ["db", "current", *url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("none")

    result = runner.invoke(app, ["db", "upgrade", *url])
    assert result.exit_code == 0, result.output
    assert f"from empty to {head_revision()}" in result.output

    result = runner.invoke(app, ["db", "upgrade", *url])
    assert "already at" in result.output

    result = runner.invoke(app, ["db", "status", *url])
    assert result.exit_code == 0, result.output
    assert "current" in result.output and "fa_sessions" in result.output

    result = runner.invoke(app, ["db", "downgrade", "base", *url])
    assert result.exit_code == 0, result.output
    assert "to base" in result.output

    result = runner.invoke(app, ["db", "current", *url])
    assert result.output.startswith("none")


def test_database_url_comes_from_the_environment(empty_database_url: str, monkeypatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, empty_database_url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert head_revision() in result.output


@pytest.mark.parametrize(
    ("url", "code", "expected"),
    [
        ("mysql://me:hunter2@db/x", 2, "Unsupported database backend 'mysql'"),
        ("postgresql://me:hunter2@127.0.0.1:1/x", 1, "Cannot connect to the database"),
    ],
)
def test_bad_urls_exit_with_a_clear_redacted_message(url: str, code: int, expected: str) -> None:
    result = runner.invoke(app, ["db", "status", "--database-url", url])
    assert result.exit_code == code
    assert expected in result.output
    assert "hunter2" not in result.output


def test_downgrade_to_an_unknown_revision_changes_nothing(database_url: str) -> None:
    result = runner.invoke(app, ["db", "downgrade", "nope", "--database-url", database_url])
    assert result.exit_code == 1
    assert "Can't locate revision identified by 'nope'" in result.output
    result = runner.invoke(app, ["db", "current", "--database-url", database_url])
    assert result.output.startswith(head_revision())


def test_an_upgrade_failing_midway_is_rolled_back_and_reported(empty_database_url: str) -> None:
    engine = create_sync_database_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            # The first migration creates fa_sessions well after its first tables.
            connection.execute(text("CREATE TABLE fa_sessions (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()
    result = runner.invoke(app, ["db", "upgrade", "--database-url", empty_database_url])
    assert result.exit_code == 1, result.output
    assert "Migration to 'head' failed on" in result.output
    assert "rolled back" in result.output and "fa_sessions" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["db", "status", "--database-url", empty_database_url])
    assert result.exit_code == 0, result.output
    assert "fa_agents" not in result.output, "nothing of the failed migration remains"

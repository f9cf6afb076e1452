"""`fast-agent-db db ...` and `tour` through the real command line app."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from mcp_agent.db.cli.app import app
from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.migration_runner import head_revision
from mcp_agent.db.urls import DATABASE_URL_ENV, is_sqlite, sqlite_file, to_async_url

runner = CliRunner()


@pytest.mark.slow
def test_tour_creates_its_own_embedded_database(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    result = runner.invoke(app, ["tour"])
    assert result.exit_code == 0, result.output
    # Its own file: the default database (./fastagent.db) is the user's, not the tour's.
    assert (tmp_path / "fastagent-tour.db").exists()
    assert not (tmp_path / "fastagent.db").exists()
    assert f"Schema revision: {head_revision()}" in result.output
    assert "fa_messages" in result.output and "fa_events" in result.output


def test_upgrade_status_current_downgrade(empty_database_url: str) -> None:
    url = ["--database-url", empty_database_url]
    parsed = to_async_url(empty_database_url)
    sqlite_path = sqlite_file(parsed) if is_sqlite(parsed) else None
    if sqlite_path is not None:
        # Reading commands create no file; an existing empty file is an empty database.
        sqlite_path.touch()
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

    # The seeded price table is data: going to base says so, and needs --yes without a terminal.
    result = runner.invoke(app, ["db", "downgrade", "base", "--yes", *url])
    assert result.exit_code == 0, result.output
    assert "fa_models: 18 rows" in result.output
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


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nope", "Cannot downgrade to 'nope': Can't locate revision identified by 'nope'"),
        ("000", "Cannot downgrade to '000': Can't locate revision identified by '000'"),
        ("0003", "Cannot downgrade to '0003': the database is at 0001, which is not above it"),
        ("head", "Cannot downgrade to 'head': the database is at 0001, which is not above it"),
    ],
)
def test_a_downgrade_to_a_revision_it_cannot_reach_changes_nothing(
    empty_database_url: str, target: str, expected: str
) -> None:
    url = ["--database-url", empty_database_url]
    assert runner.invoke(app, ["db", "upgrade", "0001", *url]).exit_code == 0
    result = runner.invoke(app, ["db", "downgrade", target, "--yes", *url])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["db", "current", *url])
    assert result.output.startswith("0001")


def _rows(raw_url: str, table: str) -> int:
    engine = create_sync_database_engine(raw_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text(f"SELECT count(*) FROM {table}"))
    finally:
        engine.dispose()


def test_a_downgrade_that_deletes_data_needs_yes_without_a_terminal(database_url: str) -> None:
    # CliRunner's stdin is not a terminal, as in a script or a pipeline.
    url = ["--database-url", database_url]
    for command in (["db", "downgrade", "base", *url], ["db", "downgrade", "0001", *url]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "deletes:" in result.output and "fa_models" in result.output
        assert "no terminal to ask on: pass --yes to go ahead" in result.output
        assert "Nothing was changed." in result.output
    result = runner.invoke(app, ["db", "current", *url])
    assert result.output.startswith(head_revision())
    assert _rows(database_url, "fa_models") == 18


def test_a_dry_run_says_what_would_go_and_changes_nothing(database_url: str) -> None:
    url = ["--database-url", database_url]
    result = runner.invoke(app, ["db", "downgrade", "0001", "--dry-run", *url])
    assert result.exit_code == 0, result.output
    assert f"from {head_revision()} to 0001 deletes:" in result.output
    assert "fa_models (seeded prices nobody changed): 18 rows" in result.output
    assert "fa_providers (providers that own only those prices): 4 rows" in result.output
    assert "Dry run: nothing was changed." in result.output
    result = runner.invoke(app, ["db", "downgrade", "base", "--dry-run", *url])
    assert result.exit_code == 0, result.output
    assert "fa_models: 18 rows" in result.output and "fa_providers: 4 rows" in result.output
    assert "fa_sessions" not in result.output, "only tables that hold rows are listed"
    result = runner.invoke(app, ["db", "current", *url])
    assert result.output.startswith(head_revision())
    assert _rows(database_url, "fa_models") == 18


def test_a_downgrade_that_deletes_nothing_asks_nothing(empty_database_url: str) -> None:
    url = ["--database-url", empty_database_url]
    assert runner.invoke(app, ["db", "upgrade", "0003", *url]).exit_code == 0
    result = runner.invoke(app, ["db", "downgrade", "0002", *url])
    assert result.exit_code == 0, result.output
    assert "from 0003 to 0002 deletes no data." in result.output
    assert "Downgraded" in result.output and "to 0002" in result.output
    result = runner.invoke(app, ["db", "downgrade", "0002", *url])
    assert result.exit_code == 0, result.output
    assert "Schema already at 0002" in result.output


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

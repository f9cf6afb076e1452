"""Issue #13, item 11: commands that only read (or change only what exists) create nothing.

A mistyped SQLite path used to leave an empty database file behind; now it is an error naming
the path, and no file appears. On PostgreSQL the same commands leave a database without our
schema as it is. The SQLite files and spill files we do create are 0600.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mcp_agent.db.engine import prepare_sqlite_file
from mcp_agent.db.errors import DatabaseUnavailableError
from mcp_agent.db.private_files import open_private_text
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.test_bad_input_cli import assert_clean_failure, readable

READ_ONLY = [
    pytest.param(("sessions", "list"), id="sessions list"),
    pytest.param(("sessions", "show", "demo"), id="sessions show"),
    pytest.param(("sessions", "export", "demo"), id="sessions export"),
    pytest.param(("sessions", "delete", "demo"), id="sessions delete"),
    pytest.param(("sessions", "fork", "demo", "--at", "1"), id="sessions fork"),
    pytest.param(("logs",), id="logs"),
    pytest.param(("executions", "list"), id="executions list"),
    pytest.param(("executions", "show", "x"), id="executions show"),
    pytest.param(("usage",), id="usage"),
    pytest.param(("agents", "list"), id="agents list"),
    pytest.param(("agents", "show", "echo"), id="agents show"),
    pytest.param(("agents", "history", "echo"), id="agents history"),
    pytest.param(("agents", "export"), id="agents export"),
    pytest.param(("agents", "delete", "echo"), id="agents delete"),
    pytest.param(("prune", "--older-than", "30d"), id="prune"),
]
#: Commands that describe the schema, and so work on a database without one.
DESCRIBING = [
    pytest.param(("db", "current"), id="db current"),
    pytest.param(("db", "status"), id="db status"),
]


def _sqlite_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "arguments",
    READ_ONLY + DESCRIBING,
)
async def test_a_mistyped_sqlite_path_is_an_error_and_no_file_appears(
    tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    missing = tmp_path / "fastagnet.db"  # the typo

    result = await ainvoke(*arguments, "--database-url", f"sqlite:///{missing}")

    assert result.exit_code == 1, result.output
    message = readable(result.output)
    assert f"there is no file {missing}" in message
    assert "db upgrade" in message  # how to create one on purpose
    assert_clean_failure(result.output)
    assert _sqlite_files(tmp_path) == []  # no database, no -wal, -shm or lock file


@pytest.mark.parametrize("arguments", READ_ONLY)
async def test_a_database_without_our_schema_is_left_without_it(
    empty_database_url: str, backend: str, arguments: tuple[str, ...]
) -> None:
    """The same commands on a database that exists but holds no schema: a clear error saying
    how to create it, and the database stays empty (no schema created behind the user's back)."""
    if backend == "sqlite":
        # An existing, empty file: the case the missing-path test above does not cover.
        await asyncio.to_thread(prepare_sqlite_file, empty_database_url, create=True)

    result = await ainvoke(*arguments, "--database-url", empty_database_url)

    assert result.exit_code == 1, result.output
    assert "has no fast-agent-db schema yet" in readable(result.output)
    assert_clean_failure(result.output)
    assert await _table_count(empty_database_url, backend) == 0


@pytest.mark.parametrize("arguments", DESCRIBING)
async def test_describing_a_database_without_our_schema_leaves_it_without(
    empty_database_url: str, backend: str, arguments: tuple[str, ...]
) -> None:
    if backend == "sqlite":
        await asyncio.to_thread(prepare_sqlite_file, empty_database_url, create=True)

    result = await ainvoke(*arguments, "--database-url", empty_database_url)

    assert result.exit_code == 0, result.output
    assert await _table_count(empty_database_url, backend) == 0


async def _table_count(database_url: str, backend: str) -> int:
    async with await DatabaseRuntime.open_existing(database_url, check_schema=False) as runtime:
        assert await runtime.schema_revision() is None
        async with runtime.engine.connect() as connection:
            query = (
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                if backend == "sqlite"
                else "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            return int(await connection.scalar(text(query)) or 0)


async def test_open_existing_refuses_a_missing_file_even_if_asked_twice(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    for _ in range(2):
        with pytest.raises(DatabaseUnavailableError, match="there is no file"):
            await DatabaseRuntime.open_existing(f"sqlite:///{missing}")
    assert not missing.exists()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file created without an explicit mode would be readable by everyone."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sqlite
@pytest.mark.usefixtures("permissive_umask")
async def test_sqlite_files_we_create_are_private(tmp_path: Path) -> None:
    by_runtime = tmp_path / "run.db"
    async with await DatabaseRuntime.open(f"sqlite:///{by_runtime}") as runtime:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            # SQLite gives the -wal and -shm files the main file's mode.
            for path in (by_runtime, *by_runtime.parent.glob("run.db-*")):
                assert _mode(path) == 0o600, path

    by_upgrade = tmp_path / "upgraded.db"
    result = await ainvoke("db", "upgrade", "--database-url", f"sqlite:///{by_upgrade}")
    assert result.exit_code == 0, result.output
    assert _mode(by_upgrade) == 0o600


@pytest.mark.usefixtures("permissive_umask")
def test_private_text_files_are_0600_new_or_existing(tmp_path: Path) -> None:
    new = tmp_path / "events-new.jsonl"
    with open_private_text(new, "w") as spill:
        spill.write("{}\n")
    assert _mode(new) == 0o600

    older = tmp_path / "events-old.jsonl"
    older.write_text("{}\n", encoding="utf-8")
    older.chmod(0o644)
    with open_private_text(older, "a") as spill:
        spill.write("{}\n")
    assert _mode(older) == 0o600
    assert older.read_text(encoding="utf-8") == "{}\n{}\n"

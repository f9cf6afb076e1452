"""A run on a database with no tables creates the schema; any other mismatch is explained.

Empty databases (no tables at all) get the current schema from the migrations on first use,
once even when several processes start on one at the same time. A database at an older
revision, at a newer one, or holding unrelated tables is left alone, with an error that says
which it is and, where an upgrade helps, a `fast-agent-db db upgrade` the user can run as is.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.errors import SchemaOutOfDateError
from mcp_agent.db.migration_runner import SQLITE_LOCK_SUFFIX, MigrationRunner, head_revision
from mcp_agent.db.models import VERSION_TABLE
from mcp_agent.db.runtime import PASSWORD_PLACEHOLDER, DatabaseRuntime, how_to_run_db_upgrade
from mcp_agent.db.urls import DATABASE_URL_ENV
from tests.support.cli import ainvoke
from tests.support.databases import PostgresDatabases
from tests.support.processes import GUARD_S

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "hunter2-not-for-messages"
#: A revision id no fast-agent-db release has written.
FUTURE_REVISION = "9999_from_the_future"
#: Any revision of our chain behind head.
OLDER_REVISION = "0001"

#: One process's first use of a database: imports done, it says "ready" and waits for the
#: go (a line on its stdin) so that every process reaches the schema check at about once.
FIRST_USE = """
import asyncio, sys
from mcp_agent.db.migration_runner import MigrationRunner, head_revision
from mcp_agent.db.runtime import DatabaseRuntime

head_revision()
print("ready", flush=True)
sys.stdin.readline()
url, how = sys.argv[1], sys.argv[2]


async def open_it() -> None:
    runtime = await DatabaseRuntime.open(url)
    try:
        print(await runtime.schema_revision(), flush=True)
    finally:
        await runtime.close()


if how == "open":
    asyncio.run(open_it())
else:
    with MigrationRunner(url) as runner:
        runner.upgrade()
        print(runner.current(), flush=True)
"""


def _tables(raw_url: str) -> set[str]:
    engine = create_sync_database_engine(raw_url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _version_rows(raw_url: str) -> list[str]:
    engine = create_sync_database_engine(raw_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            )
    finally:
        engine.dispose()


def _execute(raw_url: str, statement: str) -> None:
    engine = create_sync_database_engine(raw_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """For the tests only PostgreSQL can run: a database with no tables."""
    name = postgres_databases.create()
    yield postgres_databases.url(name)
    postgres_databases.drop(name)


def _with_password(raw_url: str) -> str:
    return make_url(raw_url).set(password=PASSWORD).render_as_string(hide_password=False)


def _suggested_command(message: str) -> list[str]:
    """The `fast-agent-db db upgrade ...` a message suggests, as the argument list after it."""
    command = message.split("fast-agent-db db upgrade", 1)[1]
    command = command.split(" (", 1)[0].split(";", 1)[0]
    return ["db", "upgrade", *shlex.split(command)]


async def _refused(raw_url: str | None, **options: bool) -> SchemaOutOfDateError:
    with pytest.raises(SchemaOutOfDateError) as raised:
        await DatabaseRuntime.open(raw_url, **options)
    assert raised.value.required == head_revision()
    return raised.value


async def test_an_empty_database_gets_the_current_schema_on_first_use(
    empty_database_url: str,
) -> None:
    async with await DatabaseRuntime.open(empty_database_url) as runtime:
        assert await runtime.schema_revision() == head_revision()

    def check() -> None:
        with MigrationRunner(empty_database_url) as runner:
            assert runner.current() == head_revision()
            assert runner.drift() == [], "the created schema is the migrations' one"

    await asyncio.to_thread(check)
    assert await asyncio.to_thread(_version_rows, empty_database_url) == [head_revision()]


async def test_a_database_downgraded_to_base_counts_as_empty(empty_database_url: str) -> None:
    def downgraded() -> set[str]:
        with MigrationRunner(empty_database_url) as runner:
            runner.upgrade()
            runner.downgrade("base")
        return _tables(empty_database_url)

    # `downgrade base` leaves Alembic's version table behind, empty: the start of the chain.
    assert await asyncio.to_thread(downgraded) == {VERSION_TABLE}
    async with await DatabaseRuntime.open(empty_database_url) as runtime:
        assert await runtime.schema_revision() == head_revision()


@pytest.mark.sqlite
async def test_an_in_memory_database_gets_the_schema_in_its_own_connection() -> None:
    async with await DatabaseRuntime.open("sqlite://") as runtime:
        assert await runtime.schema_revision() == head_revision()
        async with runtime.engine.connect() as connection:
            seeded = await connection.scalar(text("SELECT count(*) FROM fa_models"))
    assert seeded, "the migrations ran, data migrations included"


@pytest.mark.slow
async def test_concurrent_first_uses_create_the_schema_once(empty_database_url: str) -> None:
    """Four processes open one fresh database at once while a fifth runs `db upgrade`."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop(DATABASE_URL_ENV, None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, empty_database_url, how],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for how in ("open", "open", "upgrade", "open", "open")
    ]

    def start_together_and_wait() -> list[tuple[int, str, str]]:
        try:
            for process in processes:
                assert process.stdout is not None and process.stdin is not None
                ready = process.stdout.readline()
                assert ready == "ready\n", (ready, process.stderr and process.stderr.read())
            for process in processes:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            results = []
            for process in processes:
                # A guard against a hang, not a time limit: each takes seconds.
                stdout, stderr = process.communicate(timeout=GUARD_S)
                results.append((process.returncode, stdout, stderr))
            return results
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()

    results = await asyncio.to_thread(start_together_and_wait)
    for code, stdout, stderr in results:
        assert code == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
        assert stdout.strip() == head_revision(), f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert await asyncio.to_thread(_version_rows, empty_database_url) == [head_revision()]

    def drift() -> list[object]:
        with MigrationRunner(empty_database_url) as runner:
            return runner.drift()

    assert await asyncio.to_thread(drift) == []


@pytest.mark.sqlite
def test_the_sqlite_migration_lock_file_is_private(tmp_path: Path) -> None:
    database = tmp_path / "private.db"
    with MigrationRunner(f"sqlite:///{database}") as runner:
        runner.upgrade()
    lock_file = database.with_name(database.name + SQLITE_LOCK_SUFFIX)
    assert stat.S_IMODE(lock_file.stat().st_mode) & 0o077 == 0


async def test_an_empty_database_is_refused_when_creation_is_off(
    empty_database_url: str,
) -> None:
    error = await _refused(empty_database_url, create_if_empty=False)
    assert error.state == "empty" and error.current is None
    assert "has no fast-agent-db schema yet" in str(error)
    assert "fast-agent-db db upgrade --database-url" in str(error)
    assert await asyncio.to_thread(_tables, empty_database_url) == set()


async def test_an_older_revision_needs_an_explicit_upgrade_and_says_how(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(lambda: MigrationRunner(empty_database_url).upgrade(OLDER_REVISION))
    tables_before = await asyncio.to_thread(_tables, empty_database_url)

    error = await _refused(empty_database_url)
    assert error.state == "older" and error.current == OLDER_REVISION
    message = str(error)
    assert (
        f"is at schema revision {OLDER_REVISION}; this fast-agent-db needs {head_revision()}"
        in message
    )
    # The database is named redacted; the command names it runnably.
    assert "***" not in " ".join(_suggested_command(message))
    assert PASSWORD_PLACEHOLDER not in message
    assert await asyncio.to_thread(_version_rows, empty_database_url) == [OLDER_REVISION]
    assert await asyncio.to_thread(_tables, empty_database_url) == tables_before

    # The suggested command runs as printed and brings the database to head.
    upgraded = await ainvoke(*_suggested_command(message))
    assert upgraded.exit_code == 0, upgraded.output
    async with await DatabaseRuntime.open(empty_database_url) as runtime:
        assert await runtime.schema_revision() == head_revision()


async def test_a_newer_revision_says_so_and_not_to_upgrade_the_database(
    database_url: str,
) -> None:
    await asyncio.to_thread(
        _execute, database_url, f"UPDATE {VERSION_TABLE} SET version_num = '{FUTURE_REVISION}'"
    )
    error = await _refused(database_url)
    assert error.state == "newer" and error.current == FUTURE_REVISION
    message = str(error)
    assert f"schema revision {FUTURE_REVISION}, which is newer than this fast-agent-db" in message
    assert f"knows revisions up to {head_revision()}" in message
    assert "Upgrade fast-agent-db" in message
    assert "db upgrade" not in message

    # An explicit `db upgrade` gives the same answer and leaves the database alone.
    upgraded = await ainvoke("db", "upgrade", "--database-url", database_url)
    assert upgraded.exit_code == 1
    assert "newer than this fast-agent-db" in upgraded.output
    assert await asyncio.to_thread(_version_rows, database_url) == [FUTURE_REVISION]


async def test_a_database_with_other_tables_is_not_migrated_behind_the_users_back(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(
        _execute, empty_database_url, "CREATE TABLE customers (id INTEGER PRIMARY KEY)"
    )
    error = await _refused(empty_database_url)
    assert error.state == "foreign" and error.current is None
    message = str(error)
    assert "has other tables (customers) but no fast-agent-db schema" in message
    assert await asyncio.to_thread(_tables, empty_database_url) == {"customers"}

    # Asked explicitly, `db upgrade` creates our tables alongside.
    upgraded = await ainvoke(*_suggested_command(message))
    assert upgraded.exit_code == 0, upgraded.output
    async with await DatabaseRuntime.open(empty_database_url) as runtime:
        assert await runtime.schema_revision() == head_revision()
    assert "customers" in await asyncio.to_thread(_tables, empty_database_url)


@pytest.mark.postgresql
async def test_tables_outside_the_search_path_do_not_count(fresh_postgres_url: str) -> None:
    await asyncio.to_thread(_execute, fresh_postgres_url, "CREATE SCHEMA elsewhere")
    await asyncio.to_thread(_execute, fresh_postgres_url, "CREATE TABLE elsewhere.t (id int)")
    async with await DatabaseRuntime.open(fresh_postgres_url) as runtime:
        assert await runtime.schema_revision() == head_revision()


@pytest.mark.postgresql
async def test_a_password_in_an_explicit_url_is_a_placeholder_in_the_command(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    await asyncio.to_thread(lambda: MigrationRunner(fresh_postgres_url).upgrade(OLDER_REVISION))
    url = _with_password(fresh_postgres_url)  # the test server trusts, and ignores it

    message = str(await _refused(url))
    assert PASSWORD not in message
    assert f"in place of {PASSWORD_PLACEHOLDER}" in message
    arguments = _suggested_command(message)
    assert "***" not in " ".join(arguments)
    suggested_url = arguments[arguments.index("--database-url") + 1]
    assert make_url(suggested_url).password == PASSWORD_PLACEHOLDER
    assert suggested_url.replace(PASSWORD_PLACEHOLDER, PASSWORD) == url

    # Substituted as the message says, the command upgrades the database.
    runnable = [argument.replace(PASSWORD_PLACEHOLDER, PASSWORD) for argument in arguments]
    upgraded = await ainvoke(*runnable)
    assert upgraded.exit_code == 0, upgraded.output
    assert await asyncio.to_thread(_version_rows, fresh_postgres_url) == [head_revision()]


@pytest.mark.postgresql
async def test_a_url_from_the_environment_is_not_repeated_in_the_command(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(lambda: MigrationRunner(fresh_postgres_url).upgrade(OLDER_REVISION))
    monkeypatch.setenv(DATABASE_URL_ENV, _with_password(fresh_postgres_url))

    message = str(await _refused(None))
    assert PASSWORD not in message
    assert f"run: fast-agent-db db upgrade (it reads {DATABASE_URL_ENV}" in message
    assert "--database-url" not in message

    upgraded = await ainvoke(*_suggested_command(message))
    assert upgraded.exit_code == 0, upgraded.output
    assert await asyncio.to_thread(_version_rows, fresh_postgres_url) == [head_revision()]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://me@db.example:5432/agents?sslmode=require",
            "run: fast-agent-db db upgrade --database-url "
            "'postgresql://me@db.example:5432/agents?sslmode=require'",
        ),
        (
            f"postgresql://me:{PASSWORD}@db.example/agents",
            f"run, with the database password in place of {PASSWORD_PLACEHOLDER}: "
            "fast-agent-db db upgrade --database-url "
            f"'postgresql://me:{PASSWORD_PLACEHOLDER}@db.example/agents'",
        ),
        (
            "sqlite:////srv/it's here.db",
            "run: fast-agent-db db upgrade --database-url 'sqlite:////srv/it'\"'\"'s here.db'",
        ),
    ],
)
def test_how_to_run_db_upgrade(url: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert how_to_run_db_upgrade(url) == expected
    assert PASSWORD not in how_to_run_db_upgrade(url)


def test_how_to_run_db_upgrade_on_a_relative_sqlite_file_names_it_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///fastagent.db", "fastagent.db"):
        assert how_to_run_db_upgrade(url).endswith(
            f"--database-url 'sqlite:///{tmp_path / 'fastagent.db'}'"
        )


def test_how_to_run_db_upgrade_with_the_url_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://me:{PASSWORD}@db.example/agents"
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    assert how_to_run_db_upgrade(url) == (
        f"run: fast-agent-db db upgrade (it reads {DATABASE_URL_ENV}, as this run did)"
    )
    # Another URL than the variable's must be spelled out.
    assert "--database-url 'postgresql://me@other/agents'" in how_to_run_db_upgrade(
        "postgresql://me@other/agents"
    )

"""Issue #13, item 10: values the database cannot hold, and database failures, reach the user
as a clear error naming the option, never a traceback or SQLAlchemy's text with the statement
and its parameters, and change nothing; the same on SQLite and PostgreSQL.

Each case reproduces an input the adversarial trial used (a session id over 128 characters,
`--limit -1`, `--version 99999999999`, `prune --older-than 99999999999999d`, NUL characters,
non-UTF-8 YAML, a list used as a mapping key), then "database is locked" after the busy
timeout and the database lost while a command runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from mcp.types import TextContent
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.engine import SQLITE_BUSY_TIMEOUT_ENV, describe_database_error
from mcp_agent.db.errors import DatabaseRefusedError
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.models import Base, SessionRow
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S

LONG_SESSION_ID = "s" * 129
SECRET_TEXT = "do-not-print-this-message-text"
BUNDLE = "agents:\n  - {name: echo, type: agent, model: passthrough}\n"


async def database_snapshot(database_url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every fast-agent-db table, comparable before and after a command."""
    async with await DatabaseRuntime.open_existing(database_url) as runtime:
        async with runtime.engine.connect() as connection:
            snapshot = {}
            for table in Base.metadata.sorted_tables:
                rows = (await connection.execute(select(table))).all()
                snapshot[table.name] = sorted(tuple(repr(value) for value in row) for row in rows)
            return snapshot


def readable(output: str) -> str:
    """CLI output with rich's boxes and line wrapping taken out."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", output))


def assert_clean_failure(output: str) -> None:
    assert "Traceback" not in output
    assert "[SQL:" not in output and "[parameters:" not in output
    assert SECRET_TEXT not in output


async def _seed(database_url: str, tmp_path: Path) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("demo")
        message = PromptMessageMultipart(
            role="user", content=[TextContent(type="text", text=SECRET_TEXT)]
        )
        await store.append("demo", "echo", [NewMessage(message)])
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        await sink.write(
            [
                EventRecord(
                    occurred_at=datetime.now(UTC),
                    level="info",
                    namespace="tests",
                    message="seeded event",
                )
            ]
        )
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(BUNDLE, encoding="utf-8")
    imported = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)
    assert imported.exit_code == 0, imported.output


def _files(tmp_path: Path) -> dict[str, tuple[str, bytes]]:
    """Bad YAML files: (the file's name, its bytes)."""
    return {
        "non_utf8": ("config.yaml", b"default_model: caf\xe9\n"),
        "list_key": ("config.yaml", b"default_model: passthrough\n[a, b]: 1\n"),
        "nul_in_bundle": ("bundle.yaml", b'agents:\n  - {name: "ec\\0ho", type: agent}\n'),
        "non_utf8_bundle": ("bundle.yaml", b"agents:\n  - {name: \xff, type: agent}\n"),
    }


#: (case id, arguments, the option or file the message must name). Exit code 2 for all.
CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("session id over 128", ("sessions", "show", LONG_SESSION_ID), "SESSION_ID"),
    (
        "fork new id over 128",
        ("sessions", "fork", "demo", "--at", "1", "--new-id", LONG_SESSION_ID),
        "--new-id",
    ),
    (
        "run session over 128",
        ("run", "echo", "-m", "hi", "--session", LONG_SESSION_ID),
        "--session",
    ),
    ("sessions list --limit -1", ("sessions", "list", "--limit", "-1"), "--limit"),
    ("executions list --limit -1", ("executions", "list", "--limit", "-1"), "--limit"),
    ("logs --limit -1", ("logs", "--limit", "-1"), "--limit"),
    ("logs --limit past INTEGER", ("logs", "--limit", "99999999999"), "--limit"),
    (
        "agents show --version 99999999999",
        ("agents", "show", "echo", "--version", "99999999999"),
        "--version",
    ),
    ("agents rollback version 0", ("agents", "rollback", "echo", "0"), "VERSION"),
    ("sessions fork --at 99999999999", ("sessions", "fork", "demo", "--at", "99999999999"), "--at"),
    (
        "prune --older-than 99999999999999d",
        ("prune", "--older-than", "99999999999999d"),
        "--older-than",
    ),
    (
        "logs --since before year 1 in UTC",
        ("logs", "--since", "0001-01-01T00:00:00+05:00"),
        "--since",
    ),
    ("agent name over 200", ("agents", "delete", "a" * 201), "NAME"),
    ("execution id over 36", ("executions", "show", "e" * 37), "EXECUTION_ID"),
    ("usage model over 200", ("usage", "--model", "m" * 201), "--model"),
    (
        "NUL in a message",
        ("run", "echo", "-m", f"{SECRET_TEXT}\x00"),
        "-m: the value contains a NUL",
    ),
    ("NUL in a session id", ("sessions", "delete", "de\x00mo"), "NUL character"),
    ("NUL in a setting", ("config", "set", "default_model", "pass\x00through"), "NUL character"),
    ("NUL in an option=value", ("logs", "--agent=ec\x00ho"), "--agent"),
]
CASES += [
    ("non-UTF-8 config", ("config", "import", "{non_utf8}"), "line 1, column 19: not UTF-8"),
    ("list as a mapping key", ("config", "import", "{list_key}"), "line 2, column 1: a list"),
    (
        "NUL in a bundle (YAML \\0)",
        ("agents", "import", "{nul_in_bundle}"),
        "line 2, column 12: a NUL",
    ),
    ("non-UTF-8 bundle", ("agents", "import", "{non_utf8_bundle}"), "line 2, column 12: not UTF-8"),
]


@pytest.mark.parametrize(
    ("arguments", "named"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_is_a_clear_error_and_changes_nothing(
    database_url: str, tmp_path: Path, arguments: tuple[str, ...], named: str
) -> None:
    await _seed(database_url, tmp_path)
    files = {}
    for key, (name, content) in _files(tmp_path).items():
        directory = tmp_path / key
        directory.mkdir()
        (directory / name).write_bytes(content)
        files[key] = str(directory / name)
    arguments = tuple(
        argument.format(**files) if "{" in argument else argument for argument in arguments
    )
    before = await database_snapshot(database_url)

    result = await ainvoke(*arguments, "--database-url", database_url)

    output = readable(result.output)
    assert result.exit_code == 2, output
    assert named in output
    if any(argument.startswith(str(tmp_path)) for argument in arguments):
        assert next(a for a in arguments if a.startswith(str(tmp_path))) in output
    assert_clean_failure(result.output)
    assert await database_snapshot(database_url) == before


async def test_a_refused_statement_is_described_without_its_parameters(
    database_url: str, backend: str
) -> None:
    """The central handler's description of a real database error: the driver's first line
    and the database, never the statement or the values it carried."""
    async with await DatabaseRuntime.open(database_url) as runtime:
        values = {
            "session_id": "dup",
            "app_name": SECRET_TEXT,
            "created_at": datetime.now(UTC),
            "updated_at": datetime.now(UTC),
        }
        async with runtime.sessions.begin() as session:
            await session.execute(insert(SessionRow).values(**values))
        with pytest.raises(IntegrityError) as raised:
            async with runtime.sessions.begin() as session:
                await session.execute(insert(SessionRow).values(**values))
    assert SECRET_TEXT in str(raised.value)  # what SQLAlchemy itself would have shown

    described = describe_database_error(raised.value, database_url)

    assert isinstance(described, DatabaseRefusedError)
    assert "refused the change" in str(described)
    assert_clean_failure(str(described))
    constraint = "UNIQUE constraint failed" if backend == "sqlite" else "duplicate key value"
    assert constraint in str(described)


def _cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mcp_agent.db.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    stdout, stderr = process.communicate(timeout=GUARD_S)
    return process.returncode, f"--- stdout\n{stdout}\n--- stderr\n{stderr}"


@pytest.mark.slow
@pytest.mark.sqlite
async def test_database_locked_after_the_busy_timeout(tmp_path: Path, request) -> None:
    """A second connection holds SQLite's write lock (BEGIN IMMEDIATE) while a CLI write runs
    with a short busy timeout: a clear message naming the database and the setting, exit 1,
    nothing changed. (PostgreSQL has no such error: a writer waits for row locks.)"""
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "locked.db"
    path.write_bytes(template.read_bytes())
    database_url = f"sqlite:///{path}"
    await _seed(database_url, tmp_path)
    before = await database_snapshot(database_url)

    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        process = _cli(
            "agents",
            "delete",
            "echo",
            "--database-url",
            database_url,
            env={SQLITE_BUSY_TIMEOUT_ENV: "0.2"},
        )
        code, output = await asyncio.to_thread(_finish, process)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert code == 1, output
    message = readable(output)
    assert (
        f"The database {database_url} stayed locked by another process's write for 0.2 s" in message
    )
    assert SQLITE_BUSY_TIMEOUT_ENV in message
    assert_clean_failure(output)
    assert await database_snapshot(database_url) == before


async def test_busy_timeout_setting_that_is_not_a_number_is_refused(
    database_url: str, backend: str, monkeypatch
) -> None:
    monkeypatch.setenv(SQLITE_BUSY_TIMEOUT_ENV, "soon")
    result = await ainvoke("sessions", "list", "--database-url", database_url)
    if backend == "postgresql":
        assert result.exit_code == 0, result.output  # a SQLite setting; PostgreSQL ignores it
        return
    assert result.exit_code == 2
    assert f"{SQLITE_BUSY_TIMEOUT_ENV}: 'soon' is not a number of seconds" in readable(
        result.output
    )


def _follow_logs(database_url: str) -> subprocess.Popen[str]:
    """`logs --follow`, returned once it has printed the seeded event (so it is connected)."""
    process = _cli("logs", "--follow", "--limit", "1", "--database-url", database_url)
    assert process.stdout is not None
    first = process.stdout.readline()
    if "seeded event" not in first:
        process.kill()
        pytest.fail(f"logs --follow printed {first!r}{_finish(process)[1]}")
    return process


@pytest.mark.slow
async def test_tables_dropped_while_a_command_runs(database_url: str, tmp_path: Path) -> None:
    """The schema vanishes under a running `logs --follow` (another process dropped it): the
    next read fails with a clear message naming the table, exit 1, no traceback."""
    await _seed(database_url, tmp_path)
    process = await asyncio.to_thread(_follow_logs, database_url)
    try:
        async with await DatabaseRuntime.open(database_url) as runtime:
            async with runtime.engine.begin() as connection:
                cascade = "" if runtime.dialect == "sqlite" else " CASCADE"
                await connection.execute(text(f"DROP TABLE fa_events{cascade}"))
        code, output = await asyncio.to_thread(_finish, process)
    finally:
        process.kill()
    assert code == 1, output
    message = readable(output)
    assert "Error: The database" in message and "fa_events" in message
    assert_clean_failure(output)


def _terminate_connections_until_exit(admin_url: str, process: subprocess.Popen[str]) -> None:
    """End every other connection to the database until `process` exits.

    Repeated because a pooled connection that idled past the ping interval is replaced
    silently, so one termination may go unseen by the command.
    """
    deadline = time.monotonic() + GUARD_S
    with psycopg.connect(admin_url, autocommit=True) as connection:
        while process.poll() is None and time.monotonic() < deadline:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue


@pytest.mark.slow
@pytest.mark.postgresql
async def test_connection_lost_while_a_command_runs(request, tmp_path: Path) -> None:
    """The server ends the CLI's connection (pg_terminate_backend, as a restart or failover
    would) while `logs --follow` runs: "Lost the connection", exit 1, no traceback."""
    databases = request.getfixturevalue("postgres_databases")
    name = databases.create(template=request.getfixturevalue("postgres_template"))
    database_url = databases.url(name)
    try:
        await _seed(database_url, tmp_path)
        process = await asyncio.to_thread(_follow_logs, database_url)
        admin = make_url(database_url).set(drivername="postgresql")
        try:
            await asyncio.to_thread(
                _terminate_connections_until_exit, admin.render_as_string(False), process
            )
            code, output = await asyncio.to_thread(_finish, process)
        finally:
            process.kill()
    finally:
        databases.drop(name)
    assert code == 1, output
    message = readable(output)
    # Almost always ended mid-session; a termination that lands on a reconnect's handshake
    # reads "Cannot connect". Either way: the database named, the driver's first line.
    assert "Lost the connection to the database" in message or "Cannot connect" in message
    assert_clean_failure(output)

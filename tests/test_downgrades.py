"""Downgrades: all the way down over real data, all or nothing, and never without saying what
they delete.

The attack: after `sessions fork`, `db downgrade base` on SQLite failed with `FOREIGN KEY
constraint failed [SQL: DROP TABLE fa_sessions]` (Alembic's batch copy of a table other rows
refer to) and left `_alembic_tmp_fa_sessions` behind, so every later downgrade failed too.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from mcp_agent.core.prompt import Prompt
from sqlalchemy import func, inspect, table, text
from sqlalchemy import select as sql_select

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.migration_runner import (
    DowngradePlan,
    MigrationRunner,
    current_revision,
    head_revision,
)
from mcp_agent.db.models import ExecutionRow, UsageTurnRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import redact_url
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded, wait_guarded

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = """\
agents:
  - {name: pt, type: agent, model: passthrough}
  - {name: pt2, type: agent, model: passthrough}
  - {name: both, type: chain, sequence: [pt, pt2]}
"""


async def _seed(database_url: str, tmp_path: Path) -> None:
    """Rows in nearly every table, a forked session among them, through the public paths."""
    url = ["--database-url", database_url]
    (tmp_path / "bundle.yaml").write_text(BUNDLE, encoding="utf-8")
    for command in (
        ["agents", "import", str(tmp_path / "bundle.yaml")],
        ["config", "set", "logger.level", "info"],
        # A model of the user's beside the seeded ones, and a seeded price the user changed.
        ["models", "set-price", "anthropic/claude-mine", "--input", "1", "--output", "2"],
        ["models", "set-price", "openai/gpt-4o", "--input", "9", "--output", "9"],
    ):
        result = await ainvoke(*command, *url)
        assert result.exit_code == 0, result.output

    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("main")
        execution_id = str(uuid.uuid4())
        async with runtime.sessions.begin() as session:
            session.add(
                ExecutionRow(
                    execution_id=execution_id,
                    session_id="main",
                    agent_name="pt",
                    operation="send",
                    status="completed",
                    started_at=utc_now(),
                    settings_source="database",
                )
            )
            session.add(UsageTurnRow(execution_id=execution_id, provider="passthrough"))
        for n in range(1, 5):
            await store.append("main", "pt", [NewMessage(content=Prompt.user(f"turn {n}"))])

    forked = await ainvoke("sessions", "fork", "main", "--at", "2", "--new-id", "branch", *url)
    assert forked.exit_code == 0, forked.output
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.append("branch", "pt", [NewMessage(content=Prompt.user("on the branch"))])


def _with_sync_connection(database_url: str, work: Any) -> Any:
    engine = create_sync_database_engine(database_url)
    try:
        with engine.begin() as connection:
            return work(connection)
    finally:
        engine.dispose()


def _row_counts(database_url: str) -> dict[str, int]:
    def count(connection: Any) -> dict[str, int]:
        return {
            name: connection.scalar(sql_select(func.count()).select_from(table(name)))
            for name in inspect(connection).get_table_names()
        }

    return _with_sync_connection(database_url, count)


def _snapshot(database_url: str) -> dict[str, Any]:
    """Everything a failed downgrade must leave as it was: schema, rows, revision."""

    def read(connection: Any) -> dict[str, Any]:
        inspector = inspect(connection)
        schema = {
            name: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
                sorted(str(key) for key in inspector.get_foreign_keys(name)),
                sorted(
                    (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                    for index in inspector.get_indexes(name)
                ),
            )
            for name in inspector.get_table_names()
        }
        if connection.dialect.name == "sqlite":
            # Exactly: every table, index and trigger as SQLite stores its definition.
            schema["sqlite_master"] = connection.execute(
                text("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            ).all()
        return {"schema": schema, "revision": current_revision(connection)}

    return {**_with_sync_connection(database_url, read), "rows": _row_counts(database_url)}


def _leftover_copies(database_url: str) -> list[str]:
    return [name for name in _row_counts(database_url) if name.startswith("_alembic_tmp_")]


def _rows_losses(plan: DowngradePlan) -> dict[str, int]:
    """Rows the plan says go, by table (`what` starts with the table's name)."""
    lost: dict[str, int] = {}
    for loss in plan.losses:
        if loss.unit == "row" and loss.count is not None:
            name = loss.what.split()[0]
            lost[name] = lost.get(name, 0) + loss.count
    return lost


EXPECTED_LOSSES = {
    # What the seed data loses at each step of our own migrations (a later revision's
    # downgrade adds its own lines above these).
    "0002": ["fa_executions.settings_source: 1 value"],
    "0001": [
        "fa_executions.settings_source: 1 value",
        # 18 seeded, one of them with a price the user changed; claude-mine is the user's.
        "fa_models (seeded prices nobody changed): 17 rows",
        "fa_providers (providers that own only those prices): 2 rows",
        "fa_providers.configured (providers kept but marked as not in the settings): 2 values",
    ],
}


@pytest.mark.parametrize("target", ["0002", "0001", "base"])
async def test_a_downgrade_after_a_fork_deletes_exactly_what_it_said(
    database_url: str, tmp_path: Path, target: str
) -> None:
    await _seed(database_url, tmp_path)
    before = await asyncio.to_thread(_row_counts, database_url)

    def downgrade() -> DowngradePlan:
        with MigrationRunner(database_url) as runner:
            plan = runner.plan_downgrade(target)
            runner.downgrade(target)
            assert runner.current() == (None if target == "base" else target)
            return plan

    plan = await asyncio.to_thread(downgrade)
    after = await asyncio.to_thread(_row_counts, database_url)

    assert plan.current == head_revision()
    assert plan.target == (None if target == "base" else target)
    if target == "base":
        # Every table that held rows is listed with its count, and nothing else.
        assert {loss.what: loss.count for loss in plan.losses} == {
            name: count
            for name, count in before.items()
            if count and name.startswith("fa_") and name != "fa_schema_version"
        }
        assert set(after) <= {"fa_schema_version"}
    else:
        stated = [str(loss) for loss in plan.losses if loss.count is not None]
        assert stated[-len(EXPECTED_LOSSES[target]) :] == EXPECTED_LOSSES[target]
        lost = _rows_losses(plan)
        for name, count in after.items():
            assert count == before[name] - lost.get(name, 0), f"{name}: nothing else lost"
        for name in set(before) - set(after):
            assert before[name] == 0 or lost.get(name) == before[name], f"{name} was not listed"
    assert await asyncio.to_thread(_leftover_copies, database_url) == []

    def upgrade_again() -> None:
        with MigrationRunner(database_url) as runner:
            runner.upgrade()
            assert runner.drift() == []

    await asyncio.to_thread(upgrade_again)


def _refuse_deleting_prices(connection: Any) -> None:
    """0002's downgrade deletes the seeded prices; this makes it fail after 0003's went."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            "CREATE TRIGGER keep_prices BEFORE DELETE ON fa_models "
            "BEGIN SELECT RAISE(ABORT, 'prices are kept'); END"
        )
        return
    connection.exec_driver_sql(
        "CREATE FUNCTION keep_prices() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'prices are kept'; END $$"
    )
    connection.exec_driver_sql(
        "CREATE TRIGGER keep_prices BEFORE DELETE ON fa_models "
        "FOR EACH ROW EXECUTE FUNCTION keep_prices()"
    )


def _refer_to_a_session(connection: Any) -> None:
    """A table of the user's refers to fa_sessions, which 0001's downgrade drops, last of all."""
    connection.exec_driver_sql(
        "CREATE TABLE notes (note_id INTEGER PRIMARY KEY, "
        "session_id VARCHAR(128) REFERENCES fa_sessions (session_id))"
    )
    connection.exec_driver_sql("INSERT INTO notes VALUES (1, 'main')")


FAILURES = {
    "a trigger refuses 0002's delete": (_refuse_deleting_prices, "prices are kept"),
    "a user's table refers to fa_sessions": (_refer_to_a_session, "fa_sessions"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_downgrade_failing_midway_leaves_the_database_as_it_was(
    database_url: str, tmp_path: Path, failure: str
) -> None:
    await _seed(database_url, tmp_path)
    arrange, reason = FAILURES[failure]
    await asyncio.to_thread(_with_sync_connection, database_url, arrange)
    before = await asyncio.to_thread(_snapshot, database_url)

    def downgrade() -> str:
        with MigrationRunner(database_url) as runner, pytest.raises(FastAgentDbError) as raised:
            runner.downgrade("base")
        return str(raised.value)

    message = await asyncio.to_thread(downgrade)
    assert f"Migration to 'base' failed on {redact_url(database_url)} and was rolled back" in (
        message
    )
    assert reason in message
    assert await asyncio.to_thread(_snapshot, database_url) == before
    assert await asyncio.to_thread(_leftover_copies, database_url) == []

    # And the command line says so without a traceback.
    result = await ainvoke("db", "downgrade", "base", "--yes", "--database-url", database_url)
    assert result.exit_code == 1, result.output
    assert "rolled back" in result.output and reason in result.output
    assert "Traceback" not in result.output
    assert await asyncio.to_thread(_snapshot, database_url) == before


@pytest.mark.sqlite
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_copy_left_by_a_batch_operation_that_failed_earlier(
    database_url: str, tmp_path: Path
) -> None:
    """SQLite only: PostgreSQL alters tables in place. Before migrations were transactional,
    the failure above left `_alembic_tmp_fa_sessions`; the next downgrade clears it."""
    await _seed(database_url, tmp_path)

    def leave_copy(connection: Any) -> None:
        connection.exec_driver_sql(
            "CREATE TABLE _alembic_tmp_fa_sessions AS SELECT * FROM fa_sessions"
        )

    await asyncio.to_thread(_with_sync_connection, database_url, leave_copy)
    result = await ainvoke("db", "downgrade", "base", "--yes", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert set(await asyncio.to_thread(_row_counts, database_url)) == {"fa_schema_version"}


@pytest.mark.sqlite
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_copy_whose_table_is_gone_is_not_dropped(database_url: str) -> None:
    def leave_copy(connection: Any) -> None:
        connection.exec_driver_sql("CREATE TABLE _alembic_tmp_fa_lost (id INTEGER)")
        connection.exec_driver_sql("INSERT INTO _alembic_tmp_fa_lost VALUES (1)")

    await asyncio.to_thread(_with_sync_connection, database_url, leave_copy)
    before = await asyncio.to_thread(_snapshot, database_url)
    result = await ainvoke("db", "downgrade", "0002", "--yes", "--database-url", database_url)
    assert result.exit_code == 1, result.output
    assert "_alembic_tmp_fa_lost is a copy of fa_lost, which no longer exists" in result.output
    assert await asyncio.to_thread(_snapshot, database_url) == before


async def test_a_confirmed_downgrade_stops_when_more_would_go(
    database_url: str, tmp_path: Path
) -> None:
    await _seed(database_url, tmp_path)
    plan = await asyncio.to_thread(lambda: MigrationRunner(database_url).plan_downgrade("base"))
    async with await DatabaseRuntime.open(database_url) as runtime:
        await SqlConversationStore(runtime).append(
            "main", "pt", [NewMessage(content=Prompt.user("written while they read the list"))]
        )
    before = await asyncio.to_thread(_snapshot, database_url)

    def downgrade() -> None:
        with MigrationRunner(database_url) as runner:
            with pytest.raises(FastAgentDbError, match="more than was confirmed") as raised:
                runner.downgrade("base", confirmed=plan)
            assert "fa_messages: 6 rows" in str(raised.value)

    await asyncio.to_thread(downgrade)
    assert await asyncio.to_thread(_snapshot, database_url) == before


# -- the confirmation, in a real process ---------------------------------------------------


def _command(database_url: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mcp_agent.db.cli",
        "db",
        "downgrade",
        *args,
        "--database-url",
        database_url,
    ]


def _environment() -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    environment.pop("FAST_AGENT_DATABASE_URL", None)
    return environment


def _answer_on_a_terminal(command: list[str], answer: str) -> tuple[int, str]:
    """Run `command` on a pseudo-terminal, answer its question, return its code and output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=_environment(),
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 600)
            if not ready:
                raise AssertionError(f"no output for 600 s; so far:\n{output.decode()}")
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"Delete it and downgrade?" in output:
                os.write(controller, answer.encode() + b"\n")
                answered = True
    finally:
        os.close(controller)
    code = wait_guarded(process)
    # Without styles: NO_COLOR drops colours, not bold.
    text_output = re.sub(r"\x1b\[[0-9;]*m", "", output.decode(errors="replace"))
    text_output = text_output.replace("\r\n", "\n")
    if code not in (0, 1):
        print(text_output)
    return code, text_output


@pytest.mark.slow
async def test_the_question_on_a_terminal_and_the_refusal_without_one(
    database_url: str, tmp_path: Path
) -> None:
    await _seed(database_url, tmp_path)
    before = await asyncio.to_thread(_snapshot, database_url)

    without_terminal = run_guarded(
        _command(database_url, "base"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_environment(),
    )
    if without_terminal.returncode != 2:
        print(without_terminal.stdout, without_terminal.stderr)
    assert without_terminal.returncode == 2
    assert "fa_messages: 5 rows" in without_terminal.stdout
    assert "pass --yes" in without_terminal.stderr
    assert await asyncio.to_thread(_snapshot, database_url) == before

    code, output = await asyncio.to_thread(
        _answer_on_a_terminal, _command(database_url, "base"), "n"
    )
    assert code == 1, output
    assert "fa_sessions: 2 rows" in output and "Downgrade cancelled" in output
    assert "Traceback" not in output
    assert await asyncio.to_thread(_snapshot, database_url) == before

    code, output = await asyncio.to_thread(
        _answer_on_a_terminal, _command(database_url, "base"), "y"
    )
    assert code == 0, output
    assert re.search(r"Downgraded .* to base", output), output
    assert set(await asyncio.to_thread(_row_counts, database_url)) == {"fa_schema_version"}

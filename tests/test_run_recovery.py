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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.runs.journal import SqlRunJournal
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.agent_runs import TOOL_CALL_MESSAGE, configure_assistant
from tests.support.durable_worker import submit
from tests.support.processes import describe, run_guarded

REPO = Path(__file__).resolve().parents[1]


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

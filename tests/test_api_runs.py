"""POST /v1/sessions/{id}/runs on both backends: a stored agent run in-process with a tool call
through the fake OpenAI server, its execution tree and messages read back through the API; the
SSE stream of a run parsed; a failing run a 502 problem; bad input refused with nothing run or
stored; runs taking turns, with a bounded queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from mcp_agent.db.api.routers.runs import RunQueue
from mcp_agent.db.models import ExecutionRow, MessageRow
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.agent_runs import TOOL_CALL_MESSAGE, configure_assistant
from tests.support.api import ApiClient, api_client, assert_problem
from tests.support.cli import ainvoke
from tests.support.streaming_asgi import streaming_client

#: Generous: a run starts an MCP server process, on a loaded machine too.
RUN_TIMEOUT = httpx.Timeout(600.0)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def api(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path, fresh_upstream_state: None
) -> AsyncIterator[ApiClient]:
    await configure_assistant(database_url, fake_openai.base_url, tmp_path)
    async with api_client(database_url) as client:
        created = await client.post("/v1/sessions", json={"session_id": "chat"})
        assert created.status_code == 201, created.text
        yield client


def parse_sse(text: str) -> list[dict]:
    """The events of an SSE body: each a dict of its fields (`data` parsed as JSON)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            if "data" in fields:
                fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


async def _counts(api: ApiClient) -> tuple[int, int]:
    async with api.runtime.sessions() as session:
        executions = await session.scalar(select(func.count()).select_from(ExecutionRow))
        messages = await session.scalar(select(func.count()).select_from(MessageRow))
    return int(executions or 0), int(messages or 0)


async def test_a_run_with_a_tool_call_and_its_execution_tree(
    api: ApiClient, fake_openai: FakeOpenAIServer
) -> None:
    response = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "assistant", "message": TOOL_CALL_MESSAGE},
        timeout=RUN_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["session_id"] == "chat" and run["agent"] == "assistant"
    assert "tool said: 5" in run["reply"]
    assert len(fake_openai.requests) == 2  # the call, then the tool's result
    execution = run["execution"]
    assert execution["status"] == "completed" and execution["agent_name"] == "assistant"
    assert execution["input_tokens"] > 0 and execution["output_tokens"] > 0
    assert execution["cost"] is not None and float(execution["cost"]) > 0

    tree = (await api.get(f"/v1/executions/{execution['execution_id']}")).json()
    assert tree["root"]["execution_id"] == execution["execution_id"]
    assert tree["root"]["session_id"] == "chat"
    assert tree["root"]["settings_source"] == "database"
    assert tree["root"]["input_tokens"] == execution["input_tokens"]

    messages = (await api.get("/v1/sessions/chat/messages")).json()["items"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"]["content"][0]["text"] == TOOL_CALL_MESSAGE
    native = json.dumps(messages[1]["provider_messages"])
    assert "calculator-add" in native and '"role": "tool"' in native

    # The next run continues the session: the model sees the earlier turn.
    again = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "assistant", "message": "and now?"},
        timeout=RUN_TIMEOUT,
    )
    assert again.json()["reply"] == "reply to: and now? (user message 2)"
    usage = (await api.get("/v1/usage", params={"by": "session"})).json()["groups"]
    assert [(group["key"], group["calls"]) for group in usage] == [("chat", 3)]


async def test_a_workflow_run_is_a_tree_of_its_steps(api: ApiClient) -> None:
    response = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "pipeline", "message": "hello"},
        timeout=RUN_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "reply to: hello (user message 1)"
    tree = (await api.get(f"/v1/executions/{response.json()['execution']['execution_id']}")).json()
    root = tree["root"]
    assert root["agent_name"] == "pipeline"
    assert [child["agent_name"] for child in root["children"]] == ["assistant", "echo"]
    assert root["input_tokens"] == sum(child["input_tokens"] for child in root["children"])
    session = (await api.get("/v1/sessions/chat")).json()
    assert set(session["agents"]) == {"assistant", "echo"}


async def test_a_streamed_run_sends_its_events_then_the_reply(api: ApiClient) -> None:
    response = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "assistant", "message": TOOL_CALL_MESSAGE, "stream": True},
        timeout=RUN_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[0]["event"] == "run"
    assert events[0]["data"] == {"session_id": "chat", "agent": "assistant"}
    logs = events[1:-1]
    assert logs and all(event["event"] == "log" for event in logs)
    ids = [int(event["id"]) for event in logs]
    assert ids == sorted(set(ids)), "each event once, in order"
    assert all(event["data"]["event_id"] == int(event["id"]) for event in logs)
    assert all(event["data"]["session_id"] == "chat" for event in logs)
    assert any("calculator" in event["data"]["message"] for event in logs)
    final = events[-1]
    assert final["event"] == "reply"
    assert "tool said: 5" in final["data"]["reply"]
    assert final["data"]["execution"]["status"] == "completed"
    # Every event the run stored for the session was sent (the session is new: all are its).
    stored = (await api.get("/v1/events", params={"session": "chat", "limit": 200})).json()
    assert sorted(item["event_id"] for item in stored["items"]) == ids


@pytest.mark.slow  # several whole runs
async def test_a_failing_run_is_a_502_problem_and_the_server_goes_on(
    api: ApiClient, database_url: str
) -> None:
    # Nothing listens on port 9 of this machine: the provider cannot be reached.
    result = await ainvoke(
        "config", "set", "generic.base_url", "http://127.0.0.1:9/v1", "--database-url", database_url
    )
    assert result.exit_code == 0, result.output
    response = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "assistant", "message": "hello"},
        timeout=RUN_TIMEOUT,
    )
    problem = assert_problem(response, 502)
    assert problem["type"].endswith("/run-failed")
    assert "the run failed" in problem["detail"]
    async with api.runtime.sessions() as session:
        statuses = list(await session.scalars(select(ExecutionRow.status)))
    assert statuses and set(statuses) == {"failed"}
    assert (await api.get("/v1/sessions/chat/messages")).json()["items"] == []

    streamed = await api.post(
        "/v1/sessions/chat/runs",
        json={"agent": "assistant", "message": "hello", "stream": True},
        timeout=RUN_TIMEOUT,
    )
    final = parse_sse(streamed.text)[-1]
    assert final["event"] == "error" and final["data"]["status"] == 502
    # The server still answers, and runs what it can.
    echoed = await api.post(
        "/v1/sessions/chat/runs", json={"agent": "echo", "message": "ping"}, timeout=RUN_TIMEOUT
    )
    assert echoed.status_code == 200 and echoed.json()["reply"] == "ping"


async def test_bad_run_requests_name_the_field_and_run_nothing(
    api: ApiClient, fake_openai: FakeOpenAIServer
) -> None:
    for body, field in (
        ({"agent": "nobody", "message": "hi"}, "agent"),
        ({"message": "hi"}, "agent"),
        ({"agent": "assistant"}, "message"),
        ({"agent": "assistant", "message": ""}, "message"),
        ({"agent": "assistant", "message": 42}, "message"),
        ({"agent": "assistant", "message": "hi", "stream": "maybe"}, "stream"),
        ({"agent": "assistant", "message": "hi", "model": ""}, "model"),
        ({"agent": "assistant", "message": "hi", "temperature": 2}, "temperature"),
        ({"agent": "a" * 201, "message": "hi"}, "agent"),
    ):
        assert_problem(await api.post("/v1/sessions/chat/runs", json=body), 422, field)
    problem = assert_problem(
        await api.post("/v1/sessions/chat/runs", json={"agent": "nobody", "message": "hi"}), 422
    )
    assert "assistant" in problem["detail"]  # names what there is
    assert_problem(
        await api.post("/v1/sessions/nosuch/runs", json={"agent": "assistant", "message": "hi"}),
        404,
    )
    assert fake_openai.requests == []
    assert await _counts(api) == (0, 0)


@pytest.mark.slow  # several whole runs
async def test_runs_take_turns_and_a_full_queue_is_a_429(api: ApiClient) -> None:
    api.app.state.run_queue = RunQueue(max_waiting=0)
    slow = asyncio.create_task(
        api.post(
            "/v1/sessions/chat/runs",
            json={"agent": "assistant", "message": 'CALL calculator-sleep {"seconds": 2}'},
            timeout=RUN_TIMEOUT,
        )
    )
    while not api.app.state.run_queue._tasks:  # the slow run has been admitted
        await asyncio.sleep(0.01)
    refused = await api.post("/v1/sessions/chat/runs", json={"agent": "echo", "message": "hi"})
    problem = assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "5" and "try again" in problem["detail"]
    assert (await slow).status_code == 200
    after = await api.post(
        "/v1/sessions/chat/runs", json={"agent": "echo", "message": "hi"}, timeout=RUN_TIMEOUT
    )
    assert after.status_code == 200, after.text

    # With room to wait, runs queue up and all complete, one after another.
    api.app.state.run_queue = RunQueue(max_waiting=4)
    replies = await asyncio.gather(
        *(
            api.post(
                "/v1/sessions/chat/runs",
                json={"agent": "echo", "message": f"m{number}"},
                timeout=RUN_TIMEOUT,
            )
            for number in range(3)
        )
    )
    assert sorted(reply.json()["reply"] for reply in replies) == ["m0", "m1", "m2"]
    roots = (await api.get("/v1/executions", params={"agent": "echo"})).json()["items"]
    spans = sorted((root["started_at"], root["finished_at"]) for root in roots)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False)), (
        "one run at a time"
    )


@pytest.mark.slow  # several whole runs
async def test_a_run_whose_client_leaves_still_completes(api: ApiClient) -> None:
    async with (
        streaming_client(api.app, api.token) as client,
        client.stream(
            "POST",
            "/v1/sessions/chat/runs",
            json={"agent": "assistant", "message": "still here", "stream": True},
            timeout=RUN_TIMEOUT,
        ) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("event: run"):
                break  # leave as soon as the run has started
    queue: RunQueue = api.app.state.run_queue
    assert queue._tasks, "the run goes on without its client"
    while queue._tasks:
        await asyncio.sleep(0.05)
    messages = (await api.get("/v1/sessions/chat/messages")).json()["items"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"]["content"][0]["text"] == "reply to: still here (user message 1)"

"""/v1/runs on both backends: durable runs queued over HTTP for the workers, through the run
store (runs/sql.py). A submit is a 202 with the run and its Location; bad input and a repeated
idempotency key are problems naming the field, with nothing queued; lists in cursor pages with
filters; a long-poll answered when the run ends; cancel of a queued, a running and an ended
run. A worker's part (claim, finish) is played here by the run store itself, as a worker
calls it; test_runs_across_hosts.py runs real workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mcp_agent.db.api.pagination import encode_cursor
from mcp_agent.db.api.routers import queued_runs
from mcp_agent.db.models.runs import RunRow, WebhookRow
from mcp_agent.db.runs.base import RunOutcome
from mcp_agent.db.runs.sql import SqlRunStore
from tests.support.api import ApiClient, api_client, assert_problem

ECHO = {"name": "echo", "type": "agent", "model": "passthrough"}
OTHER = {"name": "other", "type": "agent", "model": "passthrough"}


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url, token_name="submitter") as client:
        for agent in (ECHO, OTHER):
            created = await client.post("/v1/agents", json=agent)
            assert created.status_code == 201, created.text
        yield client


async def _queued(api: ApiClient) -> int:
    async with api.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(RunRow)) or 0


async def _submit(api: ApiClient, **body: object) -> dict:
    submitted = await api.post("/v1/runs", json={"agent": "echo", "message": "hi", **body})
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


async def test_a_submit_is_queued_with_its_location_and_read_back(api: ApiClient) -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    submitted = await api.post(
        "/v1/runs",
        json={
            "agent": "echo",
            "message": "hello",
            "session_id": "s-api",
            "max_attempts": 5,
            "deadline": deadline,
        },
    )
    assert submitted.status_code == 202, submitted.text
    run = submitted.json()
    assert submitted.headers["location"] == f"/v1/runs/{run['run_id']}"
    assert run["status"] == "queued"
    assert (run["agent_name"], run["message"], run["session_id"]) == ("echo", "hello", "s-api")
    assert (run["attempts"], run["max_attempts"]) == (0, 5)
    # The caller is the token, as the API records every change.
    assert run["caller"] == "api:submitter"
    assert datetime.fromisoformat(run["deadline"]) == datetime.fromisoformat(deadline)

    shown = await api.get(submitted.headers["location"])
    assert shown.status_code == 200, shown.text
    assert shown.json() == run
    stored = await SqlRunStore(api.runtime).get(run["run_id"])
    assert (stored.status, stored.caller, stored.session_id) == ("queued", "api:submitter", "s-api")

    # Without a session, the run gets a new one of its own.
    fresh = await _submit(api)
    assert fresh["session_id"] and fresh["session_id"] != "s-api"


async def test_a_repeated_idempotency_key_is_a_409_naming_the_run_and_queues_nothing(
    api: ApiClient, database_url: str
) -> None:
    first = await _submit(api, idempotency_key="order-42")
    again = await api.post(
        "/v1/runs", json={"agent": "echo", "message": "other text", "idempotency_key": "order-42"}
    )
    problem = assert_problem(again, 409, "idempotency_key")
    assert first["run_id"] in problem["detail"]
    assert again.headers["location"] == f"/v1/runs/{first['run_id']}"
    assert problem["type"].endswith("/duplicate-run")

    # The header is the same key.
    by_header = await api.post(
        "/v1/runs", json={"agent": "echo", "message": "hi"}, headers={"Idempotency-Key": "order-42"}
    )
    assert_problem(by_header, 409, "Idempotency-Key")
    header_first = await api.post(
        "/v1/runs", json={"agent": "echo", "message": "hi"}, headers={"Idempotency-Key": "h-1"}
    )
    assert header_first.status_code == 202, header_first.text
    assert header_first.json()["idempotency_key"] == "h-1"
    differing = await api.post(
        "/v1/runs",
        json={"agent": "echo", "message": "hi", "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert_problem(differing, 422, "idempotency_key")
    assert await _queued(api) == 2

    # Keys are per caller: another token's same key is its own.
    async with api_client(database_url, token_name="someone-else") as other:
        theirs = await other.post(
            "/v1/runs", json={"agent": "echo", "message": "hi", "idempotency_key": "order-42"}
        )
        assert theirs.status_code == 202, theirs.text
        assert theirs.json()["caller"] == "api:someone-else"
    assert await _queued(api) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent": "nobody", "message": "hi"}, "agent"),
        ({"agent": "echo", "message": ""}, "message"),
        ({"message": "hi"}, "agent"),
        ({"agent": "echo", "message": "hi", "deadline": "2001-01-01T00:00:00Z"}, "deadline"),
        ({"agent": "echo", "message": "hi", "deadline": "2999-01-01T00:00:00"}, "deadline"),
        ({"agent": "echo", "message": "hi", "deadline": "tomorrow"}, "deadline"),
        # Past year 9999 once in UTC: no time can hold it.
        ({"agent": "echo", "message": "hi", "deadline": "9999-12-31T23:59:59-23:59"}, "deadline"),
        ({"agent": "echo", "message": "hi", "max_attempts": 0}, "max_attempts"),
        ({"agent": "echo", "message": "hi", "session_id": "has space"}, "session_id"),
        ({"agent": "echo", "message": "hi", "webhook_url": "ftp://host/x"}, "webhook_url"),
        (
            {"agent": "echo", "message": "hi", "webhook_url": "https://u:p@host/x"},
            "webhook_url",
        ),
        (
            {
                "agent": "echo",
                "message": "hi",
                "webhook_url": "https://h/x",
                "webhook_secret_ref": "hunter2-literal",
            },
            "webhook_secret_ref",
        ),  # fmt: skip
        ({"agent": "echo", "message": "hi", "priority": 1}, "priority"),
        ({"agent": "echo", "message": "nul \u0000 here"}, "message"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_queues_nothing(
    api: ApiClient, body: dict, field: str
) -> None:
    problem = assert_problem(await api.post("/v1/runs", json=body), 422, field)
    assert "hunter2-literal" not in str(problem)
    assert await _queued(api) == 0
    async with api.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookRow)) == 0


async def test_an_unknown_agent_says_which_agents_there_are(api: ApiClient) -> None:
    problem = assert_problem(
        await api.post("/v1/runs", json={"agent": "nobody", "message": "hi"}), 422, "agent"
    )
    assert "nobody" in problem["detail"] and "echo" in problem["detail"]


async def test_runs_are_listed_newest_first_in_pages_with_filters(
    api: ApiClient, database_url: str
) -> None:
    made = [await _submit(api, session_id="s-list") for _ in range(5)]
    other = await _submit(api, agent="other")
    async with api_client(database_url, token_name="second") as second:
        theirs = (await second.post("/v1/runs", json={"agent": "echo", "message": "x"})).json()

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await api.get("/v1/runs", params=params)
        assert page.status_code == 200, page.text
        seen += [run["run_id"] for run in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    newest_first = [theirs["run_id"], other["run_id"], *[m["run_id"] for m in reversed(made)]]
    assert seen == newest_first

    async def ids(**params: object) -> list[str]:
        listed = await api.get("/v1/runs", params=params)
        assert listed.status_code == 200, listed.text
        return [run["run_id"] for run in listed.json()["items"]]

    assert await ids(agent="other") == [other["run_id"]]
    assert await ids(session="s-list") == [m["run_id"] for m in reversed(made)]
    assert theirs["run_id"] not in await ids(mine=True)
    assert len(await ids(mine=True)) == 6
    await SqlRunStore(api.runtime).cancel(other["run_id"])
    assert await ids(status="cancelled") == [other["run_id"]]
    assert await ids(status="completed") == []

    assert_problem(await api.get("/v1/runs", params={"agent": "nobody"}), 422, "agent")
    assert_problem(await api.get("/v1/runs", params={"session": "nowhere"}), 422, "session")
    assert_problem(await api.get("/v1/runs", params={"status": "lost"}), 422, "status")
    assert_problem(await api.get("/v1/runs", params={"cursor": "nonsense"}), 422, "cursor")
    altered = encode_cursor("runs", ("9999-12-31T23:59:59-23:59", "x"))
    assert_problem(await api.get("/v1/runs", params={"cursor": altered}), 422, "cursor")
    sessions_cursor = (await api.get("/v1/sessions", params={"limit": 1})).json()["next_cursor"]
    assert sessions_cursor is not None
    assert_problem(await api.get("/v1/runs", params={"cursor": sessions_cursor}), 422, "cursor")


async def test_a_run_is_addressed_by_its_whole_id(api: ApiClient) -> None:
    run = await _submit(api)
    for path in (
        f"/v1/runs/{run['run_id'][:8]}",
        "/v1/runs/00000000-0000-0000-0000-000000000000",
        f"/v1/runs/{run['run_id'][:8]}/cancel",
    ):
        method = api.post if path.endswith("/cancel") else api.get
        problem = assert_problem(await method(path), 404)
        assert "no run" in problem["detail"]
    assert (await SqlRunStore(api.runtime).get(run["run_id"])).status == "queued"


async def test_a_long_poll_answers_when_the_run_ends_or_when_its_wait_is_over(
    api: ApiClient,
) -> None:
    store = SqlRunStore(api.runtime)
    run = await _submit(api)
    # Nothing ends it: the answer comes after the wait, with the run still queued.
    still = await api.get(f"/v1/runs/{run['run_id']}", params={"wait": 0.2})
    assert still.status_code == 200 and still.json()["status"] == "queued"

    waiting = asyncio.create_task(api.get(f"/v1/runs/{run['run_id']}", params={"wait": 50}))
    claimed = await store.claim("tests:1", lease_seconds=60)
    assert claimed is not None and claimed.run.run_id == run["run_id"]
    await store.finish(claimed.lease, RunOutcome("completed", result="done"))
    answered = await waiting
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["result"]) == ("completed", "done")
    assert answered.json()["attempts"] == 1

    assert_problem(await api.get(f"/v1/runs/{run['run_id']}", params={"wait": 3600}), 422, "wait")


async def test_long_polls_beyond_the_bound_are_answered_at_once(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each open long-poll holds a database connection on PostgreSQL: past MAX_WAITS, a
    `?wait=` answers at once with the run as it is, and the ones holding go on waiting."""
    monkeypatch.setattr(queued_runs, "MAX_WAITS", 2)
    api.app.state.run_waits = None  # made again with the bound above
    run = await _submit(api)
    url = f"/v1/runs/{run['run_id']}"
    holding = [asyncio.create_task(api.get(url, params={"wait": 50})) for _ in range(2)]
    waits = None
    while waits is None or not waits.locked():  # both holders are waiting
        await asyncio.sleep(0.01)
        waits = getattr(api.app.state, "run_waits", None)
    beyond = await api.get(url, params={"wait": 50})
    assert beyond.status_code == 200 and beyond.json()["status"] == "queued"
    assert not any(task.done() for task in holding)
    store = SqlRunStore(api.runtime)
    claimed = await store.claim("tests:1", lease_seconds=60)
    assert claimed is not None
    await store.finish(claimed.lease, RunOutcome("completed", result="done"))
    for answered in await asyncio.gather(*holding):
        assert answered.json()["status"] == "completed"


async def test_cancel_a_queued_a_running_and_an_ended_run(api: ApiClient) -> None:
    store = SqlRunStore(api.runtime)
    running = await _submit(api)
    claimed = await store.claim("tests:1", lease_seconds=60)
    assert claimed is not None and claimed.run.run_id == running["run_id"]
    queued = await _submit(api)

    cancelled = await api.post(f"/v1/runs/{queued['run_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await store.claim("tests:2", lease_seconds=60) is None  # it never starts

    marked = await api.post(f"/v1/runs/{running['run_id']}/cancel")
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "running"
    assert marked.json()["cancel_requested_at"] is not None
    # The worker learns it at its next heartbeat and stops the run.
    assert await store.renew(claimed.lease, lease_seconds=60) is True
    await store.finish(claimed.lease, RunOutcome("cancelled", error="cancelled"))

    for run in (queued, running):
        ended = await api.post(f"/v1/runs/{run['run_id']}/cancel")
        problem = assert_problem(ended, 409)
        assert "cancelled" in problem["detail"] and run["run_id"] in problem["detail"]


async def test_a_webhook_given_with_the_run_is_the_runs_own(api: ApiClient) -> None:
    run = await _submit(
        api, webhook_url="https://hooks.example/run-ended", webhook_secret_ref="env:HOOK_SECRET"
    )
    listed = await api.get("/v1/webhooks", params={"run": run["run_id"]})
    assert listed.status_code == 200, listed.text
    (webhook,) = listed.json()["items"]
    assert (webhook["url"], webhook["secret_ref"], webhook["run_id"]) == (
        "https://hooks.example/run-ended",
        "env:HOOK_SECRET",
        run["run_id"],
    )
    # Subscriptions alone by default.
    assert (await api.get("/v1/webhooks")).json()["items"] == []


async def test_every_route_documents_its_problems(api: ApiClient) -> None:
    document = (await api.get("/openapi.json")).json()
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        if path == "/v1/runs" or path.startswith("/v1/runs/")
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("post", "/v1/runs"),
        ("get", "/v1/runs"),
        ("get", "/v1/runs/{run_id}"),
        ("post", "/v1/runs/{run_id}/cancel"),
    }
    for (method, path), operation in operations.items():
        expected = {"400", "401", "422", "503"}
        if "{run_id}" in path:
            expected.add("404")
        if method == "post":
            expected.add("409")
        responses = operation["responses"]
        assert expected <= set(responses), (method, path, sorted(responses))
        for code in expected:
            assert "application/problem+json" in responses[code]["content"], (method, path, code)
    submit = operations[("post", "/v1/runs")]
    assert "Location" in submit["responses"]["202"]["headers"]
    assert any(p["name"] == "Idempotency-Key" for p in submit["parameters"])

"""/v1/webhooks on both backends, through the webhook store (webhooks/sql.py): subscriptions
added, listed, read and removed; bad input (a URL that is not http(s) or carries
credentials, a secret given instead of its reference, an unknown event) a problem naming the
field, nothing stored, the secret never repeated; a run's end delivered (by the deliverer a
worker runs) and its deliveries listed with their attempts, in cursor pages with filters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from mcp_agent.db.models.runs import WebhookRow
from mcp_agent.db.runs.base import RunOutcome, RunSubmission
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.webhooks.delivery import WebhookDeliverer
from tests.support.api import ApiClient, api_client, assert_problem

ECHO = {"name": "echo", "type": "agent", "model": "passthrough"}
#: Nothing listens there: a delivery's attempt fails with a connection error, recorded.
UNREACHABLE = "http://127.0.0.1:9/hook"


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url) as client:
        created = await client.post("/v1/agents", json=ECHO)
        assert created.status_code == 201, created.text
        yield client


async def _stored(api: ApiClient) -> int:
    async with api.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(WebhookRow)) or 0


async def _ended_run(api: ApiClient, outcome: RunOutcome) -> str:
    """A run of `echo` queued, claimed and ended as a worker would; its id."""
    store = SqlRunStore(api.runtime)
    run = await store.submit(RunSubmission(agent_name="echo", message="hi"))
    claimed = await store.claim("tests:1", lease_seconds=60)
    assert claimed is not None and claimed.run.run_id == run.run_id
    await store.finish(claimed.lease, outcome)
    return run.run_id


async def test_add_list_get_and_remove_a_subscription(api: ApiClient) -> None:
    added = await api.post(
        "/v1/webhooks",
        json={
            "url": "https://hooks.example/ends",
            "events": ["completed", "run.failed"],
            "agent": "echo",
            "secret_ref": "env:HOOK_SECRET",
        },
    )
    assert added.status_code == 201, added.text
    webhook = added.json()
    assert added.headers["location"] == f"/v1/webhooks/{webhook['webhook_id']}"
    assert webhook["events"] == ["run.completed", "run.failed"]
    assert (webhook["agent_name"], webhook["secret_ref"], webhook["run_id"]) == (
        "echo",
        "env:HOOK_SECRET",
        None,
    )
    every = (await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:8080/x"})).json()
    assert every["events"] == ["run.completed", "run.failed", "run.cancelled"]
    assert every["secret_ref"] == "env:FAST_AGENT_DB_WEBHOOK_SECRET"

    first = await api.get("/v1/webhooks", params={"limit": 1})
    assert first.status_code == 200, first.text
    assert [w["webhook_id"] for w in first.json()["items"]] == [webhook["webhook_id"]]
    second = await api.get(
        "/v1/webhooks", params={"limit": 1, "cursor": first.json()["next_cursor"]}
    )
    assert [w["webhook_id"] for w in second.json()["items"]] == [every["webhook_id"]]
    assert second.json()["next_cursor"] is None

    shown = await api.get(added.headers["location"])
    assert shown.status_code == 200 and shown.json() == webhook
    removed = await api.delete(added.headers["location"])
    assert removed.status_code == 200 and removed.json() == webhook
    assert_problem(await api.get(added.headers["location"]), 404)
    assert_problem(await api.delete(added.headers["location"]), 404)
    listed = (await api.get("/v1/webhooks")).json()["items"]
    assert [w["webhook_id"] for w in listed] == [every["webhook_id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example/x"}, "url"),
        ({"url": "hooks.example/x"}, "url"),
        ({"url": "https://user:pw@hooks.example/x"}, "url"),
        ({"url": "https://hooks.example/x?token=abc"}, "url"),
        ({"url": "https://hooks.example/x", "secret_ref": "s3cr3t-value-itself"}, "secret_ref"),
        ({"url": "https://hooks.example/x", "events": ["run.started"]}, "events"),
        ({"url": "https://hooks.example/x", "events": []}, "events"),
        ({"url": "https://hooks.example/x", "agent": ""}, "agent"),
        ({"url": "https://hooks.example/x", "run_id": "x"}, "run_id"),
        ({}, "url"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_stores_nothing(
    api: ApiClient, body: dict, field: str
) -> None:
    problem = assert_problem(await api.post("/v1/webhooks", json=body), 422, field)
    assert "s3cr3t-value-itself" not in str(problem)
    assert "pw@" not in problem["detail"]
    assert await _stored(api) == 0


async def test_deliveries_are_listed_with_their_attempts(api: ApiClient) -> None:
    hook = (await api.post("/v1/webhooks", json={"url": UNREACHABLE})).json()
    completed = await _ended_run(api, RunOutcome("completed", result="done"))
    failed = await _ended_run(api, RunOutcome("failed", error="broken"))

    listed = await api.get("/v1/webhooks/deliveries")
    assert listed.status_code == 200, listed.text
    deliveries = listed.json()["items"]
    assert [(d["run_id"], d["event"], d["status"]) for d in deliveries] == [
        (failed, "run.failed", "pending"),
        (completed, "run.completed", "pending"),
    ]
    assert all(d["webhook_id"] == hook["webhook_id"] and d["attempt_log"] == [] for d in deliveries)
    assert deliveries[1]["payload"]["run"]["result"] == "done"

    # One pass of the deliverer a worker runs: the receiver is not there, so each delivery
    # has one failed attempt recorded and stays pending for a retry.
    assert await WebhookDeliverer(api.runtime, "tests:deliverer").deliver_due() == 2
    one = await api.get(f"/v1/webhooks/deliveries/{deliveries[1]['delivery_id']}")
    assert one.status_code == 200, one.text
    delivery = one.json()
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    (attempt,) = delivery["attempt_log"]
    assert attempt["worker_id"] == "tests:deliverer"
    assert attempt["status_code"] is None and attempt["error"]

    async def ids(**params: object) -> list[str]:
        page = await api.get("/v1/webhooks/deliveries", params=params)
        assert page.status_code == 200, page.text
        return [d["run_id"] for d in page.json()["items"]]

    assert await ids(run=completed) == [completed]
    assert await ids(webhook=hook["webhook_id"]) == [failed, completed]
    assert await ids(status="delivered") == []
    first = await api.get("/v1/webhooks/deliveries", params={"limit": 1})
    rest = await api.get(
        "/v1/webhooks/deliveries", params={"limit": 1, "cursor": first.json()["next_cursor"]}
    )
    assert [d["run_id"] for d in first.json()["items"] + rest.json()["items"]] == [
        failed,
        completed,
    ]
    assert rest.json()["next_cursor"] is None

    # A removed webhook's deliveries stay listed.
    assert (await api.delete(f"/v1/webhooks/{hook['webhook_id']}")).status_code == 200
    assert await ids() == [failed, completed]

    missing = "00000000-0000-0000-0000-000000000000"
    # A filter naming nothing is a typo, said as such (as the other lists' filters).
    assert_problem(await api.get("/v1/webhooks/deliveries", params={"run": missing}), 422, "run")
    assert_problem(
        await api.get("/v1/webhooks/deliveries", params={"webhook": missing}), 422, "webhook"
    )
    assert_problem(await api.get("/v1/webhooks", params={"run": missing}), 422, "run")
    assert_problem(await api.get(f"/v1/webhooks/deliveries/{missing}"), 404)
    assert_problem(
        await api.get("/v1/webhooks/deliveries", params={"status": "lost"}), 422, "status"
    )
    assert_problem(
        await api.get("/v1/webhooks/deliveries", params={"cursor": "nonsense"}), 422, "cursor"
    )


async def test_every_route_documents_its_problems(api: ApiClient) -> None:
    document = (await api.get("/openapi.json")).json()
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        if path == "/v1/webhooks" or path.startswith("/v1/webhooks/")
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("get", "/v1/webhooks"),
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks/{webhook_id}"),
        ("delete", "/v1/webhooks/{webhook_id}"),
        ("get", "/v1/webhooks/deliveries"),
        ("get", "/v1/webhooks/deliveries/{delivery_id}"),
    }
    for (method, path), operation in operations.items():
        expected = {"400", "401", "422", "503"}
        if "{" in path:
            expected.add("404")
        responses = operation["responses"]
        assert expected <= set(responses), (method, path, sorted(responses))
        for code in expected:
            assert "application/problem+json" in responses[code]["content"], (method, path, code)
    assert "Location" in operations[("post", "/v1/webhooks")]["responses"]["201"]["headers"]

"""/v1/executions and /v1/usage on both backends: roots in cursor pages with filters, a tree with
tokens and cost, usage grouped by model, agent or session; bad filters are problems naming the
field. Executions are recorded here as a run records them (SqlTurnStore: a call's start, then
its end with totals and usage); test_api_runs.py reads the tree of a real run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.executions.base import ExecutionStart, ExecutionStatus
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.turns.base import CallEnd
from mcp_agent.db.turns.sql import SqlTurnStore
from tests.support.api import ApiClient, api_client, assert_problem


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url) as client:
        await SqlConversationStore(client.runtime).ensure_session("s1")
        await SqlConversationStore(client.runtime).ensure_session("s2")
        yield client


def _usage(model: str, tokens_in: int, tokens_out: int, cost: str | None) -> UsageTurn:
    return UsageTurn(
        provider="generic",
        model=model,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        tool_use_tokens=0,
        cost=None if cost is None else Decimal(cost),
        raw_usage=None,
    )


async def _start(
    api: ApiClient,
    agent: str,
    *,
    session: str | None = "s1",
    parent: str | None = None,
    offset_s: float = 0.0,
) -> str:
    """Record that a call began (`offset_s` from now); its id."""
    execution_id = str(uuid.uuid4())
    await SqlTurnStore(api.runtime).start_call(
        ExecutionStart(
            execution_id=execution_id,
            parent_execution_id=parent,
            agent_name=agent,
            agent_version_id=None,
            operation="generate",
            started_at=utc_now() + timedelta(seconds=offset_s),
            worker_id="tests",
            session_id=session,
            settings_source="database",
        )
    )
    return execution_id


async def _end(
    api: ApiClient,
    execution_id: str,
    *,
    usage: list[UsageTurn] | None = None,
    children: list[UsageTotals] | None = None,
    status: ExecutionStatus = "completed",
    offset_s: float = 0.0,
) -> UsageTotals:
    """Record the call's end 1.5 s after its start, with its own usage turns and totals that
    add its children's (as the run recorder does); its totals."""
    totals = UsageTotals()
    for turn in usage or []:
        totals.add_turn(turn)
    for child in children or []:
        totals.add(child)
    await SqlTurnStore(api.runtime).end_call(
        CallEnd(
            execution_id,
            status,
            utc_now() + timedelta(seconds=offset_s + 1.5),
            error="it broke" if status == "failed" else None,
            totals=totals,
            usage=usage or [],
        )
    )
    return totals


async def _call(
    api: ApiClient,
    agent: str,
    *,
    session: str | None = "s1",
    parent: str | None = None,
    usage: list[UsageTurn] | None = None,
    status: ExecutionStatus = "completed",
    offset_s: float = 0.0,
) -> tuple[str, UsageTotals]:
    """A call without sub-calls, started and ended; its id and totals."""
    execution_id = await _start(api, agent, session=session, parent=parent, offset_s=offset_s)
    totals = await _end(api, execution_id, usage=usage, status=status, offset_s=offset_s)
    return execution_id, totals


async def test_roots_come_in_pages_newest_first_with_filters(api: ApiClient) -> None:
    calls: list[tuple[str, str | None, ExecutionStatus]] = [
        ("writer", "s1", "completed"),
        ("critic", "s1", "completed"),
        ("writer", "s2", "failed"),
        ("writer", None, "completed"),
        ("critic", "s2", "completed"),
    ]
    roots = []
    for number, (agent, session, status) in enumerate(calls):
        root, _ = await _call(api, agent, session=session, status=status, offset_s=number)
        await _call(api, "helper", session=session, parent=root, offset_s=number + 0.5)
        roots.append(root)

    seen, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = (await api.get("/v1/executions", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Roots only (no helper), newest first, each once.
    assert [item["execution_id"] for item in seen] == roots[::-1]
    assert seen[0]["agent_name"] == "critic" and seen[0]["duration_seconds"] == pytest.approx(
        1.5, abs=0.5
    )

    async def ids(**params: str) -> list[str]:
        response = await api.get("/v1/executions", params=params)
        assert response.status_code == 200, response.text
        return [item["execution_id"] for item in response.json()["items"]]

    assert await ids(agent="writer") == [roots[3], roots[2], roots[0]]
    assert await ids(session="s2") == [roots[4], roots[2]]
    assert await ids(status="failed") == [roots[2]]
    assert await ids(agent="critic", session="s2") == [roots[4]]
    assert await ids(status="interrupted") == []


async def test_execution_filters_and_cursors_are_checked(api: ApiClient) -> None:
    await _call(api, "writer")
    problem = assert_problem(await api.get("/v1/executions", params={"agent": "nobody"}), 422)
    assert problem["errors"][0]["field"] == "agent" and "writer" in problem["detail"]
    assert_problem(await api.get("/v1/executions", params={"session": "nosuch"}), 422, "session")
    for params, field in (
        ({"status": "exploded"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
        ({"cursor": "xyz"}, "cursor"),
        ({"agent": "a" * 201}, "agent"),
    ):
        assert_problem(await api.get("/v1/executions", params=params), 422, field)


async def test_a_tree_with_durations_tokens_and_cost(api: ApiClient) -> None:
    root_id = await _start(api, "pipeline")
    first = await _start(api, "writer", parent=root_id, offset_s=0.1)
    step, step_totals = await _call(
        api, "critic", parent=first, usage=[_usage("m2", 50, 5, "0.0005")], offset_s=0.2
    )
    first_totals = await _end(
        api, first, usage=[_usage("m1", 100, 10, "0.001")], children=[step_totals], offset_s=0.1
    )
    second, second_totals = await _call(
        api, "critic", parent=root_id, usage=[_usage("m2", 20, 2, None)], offset_s=0.3
    )
    await _end(api, root_id, children=[first_totals, second_totals])

    response = await api.get(f"/v1/executions/{root_id}")
    assert response.status_code == 200, response.text
    tree = response.json()
    assert tree["execution_id"] == root_id and tree["count"] == 4
    root = tree["root"]
    assert root["agent_name"] == "pipeline" and root["status"] == "completed"
    assert (root["input_tokens"], root["output_tokens"]) == (170, 17)
    assert [child["execution_id"] for child in root["children"]] == [first, second]
    writer = root["children"][0]
    assert (writer["input_tokens"], writer["output_tokens"]) == (150, 15)
    assert Decimal(writer["cost"]) == Decimal("0.0015")
    assert [grandchild["execution_id"] for grandchild in writer["children"]] == [step]
    assert Decimal(root["cost"]) == Decimal("0.0015")
    assert root["children"][1]["cost"] is None  # m2's second call had no price
    assert writer["duration_seconds"] == pytest.approx(1.5, abs=0.5)
    assert root["settings_source"] == "database"

    # Any execution of a tree is the root of what it is asked for.
    subtree = (await api.get(f"/v1/executions/{first}")).json()
    assert subtree["count"] == 2 and subtree["root"]["children"][0]["execution_id"] == step

    assert_problem(await api.get(f"/v1/executions/{uuid.uuid4()}"), 404)
    assert_problem(await api.get("/v1/executions/" + "e" * 37), 422, "execution_id")


async def test_usage_grouped_by_model_agent_and_session(api: ApiClient) -> None:
    await _call(api, "writer", session="s1", usage=[_usage("m1", 100, 10, "0.25")])
    await _call(
        api,
        "writer",
        session="s2",
        usage=[_usage("m1", 1, 1, "0.5"), _usage("m2", 7, 3, None)],
    )
    await _call(api, "critic", session="s2", usage=[_usage("m2", 10, 1, "1")])

    async def groups(**params: str) -> dict[str, tuple[int, int, int, str | None]]:
        response = await api.get("/v1/usage", params=params)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["by"] == params.get("by", "model")
        return {
            row["key"]: (row["calls"], row["input_tokens"], row["output_tokens"], row["cost"])
            for row in report["groups"]
        }

    by_model = await groups()
    assert by_model["m1"][:3] == (2, 101, 11) and Decimal(by_model["m1"][3]) == Decimal("0.75")
    assert by_model["m2"][:3] == (2, 17, 4) and Decimal(by_model["m2"][3]) == Decimal("1")
    by_agent = await groups(by="agent")
    assert by_agent["writer"][:3] == (3, 108, 14) and by_agent["critic"][:3] == (1, 10, 1)
    by_session = await groups(by="session")
    assert by_session["s1"][:3] == (1, 100, 10) and by_session["s2"][:3] == (3, 18, 5)
    assert set(await groups(by="agent", session="s2", model="m2")) == {"writer", "critic"}
    assert set(await groups(agent="critic")) == {"m2"}
    assert await groups(since="1h") == by_model
    assert await groups(since="2999-01-01T00:00:00") == {}


async def test_usage_bad_filters_name_the_field(api: ApiClient) -> None:
    await _call(api, "writer", usage=[_usage("m1", 1, 1, None)])
    for params, field in (
        ({"by": "colour"}, "by"),
        ({"since": "1m"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"agent": "nobody"}, "agent"),
        ({"model": "nosuch-model"}, "model"),
        ({"session": "nosuch"}, "session"),
    ):
        assert_problem(await api.get("/v1/usage", params=params), 422, field)

"""/v1/agents: definitions through the same store as `fast-agent-db agents` (validation,
immutable versions, rollback as a new version, bundles), and the graph a designer draws."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from mcp_agent.db.settings.yaml_files import parse_yaml
from tests.support.api import ApiClient, api_client, assert_problem
from tests.support.cli import ainvoke

WRITER = {"name": "writer", "type": "agent", "model": "passthrough", "servers": ["fetch"]}
CRITIC = {"name": "critic", "type": "agent", "model": "passthrough"}
REVIEW = {"name": "review", "type": "chain", "sequence": ["writer", "critic"]}
BUNDLE_YAML = """\
agents:
  - {name: writer, type: agent, model: passthrough, servers: [fetch]}
  - {name: critic, type: agent, model: passthrough}
  - {name: review, type: chain, sequence: [writer, critic]}
  - {name: fan, type: parallel, fan_out: [writer, critic], fan_in: critic}
  - {name: pick, type: router, agents: [writer, critic], model: passthrough}
  - {name: plan, type: orchestrator, agents: [review, writer], model: passthrough}
  - {name: polish, type: evaluator_optimizer, generator: writer, evaluator: critic}
"""


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url, token_name="designer") as client:
        server = await client.put("/v1/servers/fetch", json={"command": "uvx"})
        assert server.status_code == 201, server.text
        yield client


async def _definition_rows(client: ApiClient) -> tuple[Any, ...]:
    tables = ("fa_agents", "fa_agent_versions", "fa_agent_links", "fa_agent_servers")
    async with client.runtime.sessions() as session:
        return tuple(
            [
                (await session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))).all()
                for table in tables
            ]
        )


async def test_create_get_update_versions_rollback_delete(
    api: ApiClient, database_url: str
) -> None:
    created = await api.post("/v1/agents", json=WRITER)
    assert created.status_code == 201, created.text
    agent = created.json()["agent"]
    assert created.json()["outcome"] == "created"
    assert (agent["name"], agent["version"], agent["source"], agent["created_by"]) == (
        "writer",
        1,
        "api",
        "api:designer",
    )
    # Stored canonical: upstream's defaults made explicit.
    assert agent["spec"]["instruction"] and agent["spec"]["use_history"] is True
    assert_problem(await api.post("/v1/agents", json=WRITER), 409)

    same = await api.put("/v1/agents/writer", json=WRITER)
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    assert same.json()["agent"]["version"] == 1
    changed = await api.put("/v1/agents/writer", json={**WRITER, "instruction": "Write well."})
    assert changed.json()["outcome"] == "updated" and changed.json()["agent"]["version"] == 2

    current = (await api.get("/v1/agents/writer")).json()
    assert current["version"] == 2 and current["spec"]["instruction"] == "Write well."
    first = (await api.get("/v1/agents/writer?version=1")).json()
    assert first["spec"]["instruction"] != "Write well."
    assert (await api.get("/v1/agents/writer/versions/1")).json() == first
    versions = (await api.get("/v1/agents/writer/versions")).json()
    assert [v["version"] for v in versions["items"]] == [1, 2]

    rolled = await api.post("/v1/agents/writer/rollback", json={"version": 1})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["agent"]["version"] == 3
    assert rolled.json()["agent"]["content_hash"] == first["content_hash"]
    history = (await api.get("/v1/agents/writer/history")).json()["items"]
    assert [(h["version"], h["source"]) for h in history] == [
        (1, "api"),
        (2, "api"),
        (3, "rollback"),
    ]
    assert all(h["created_by"] == "api:designer" for h in history)

    # The CLI sees what the API stored.
    shown = await ainvoke("agents", "show", "writer", "--json", "--database-url", database_url)
    assert '"version": 3' in shown.stdout

    deleted = await api.delete("/v1/agents/writer")
    assert deleted.status_code == 204
    assert_problem(await api.get("/v1/agents/writer"), 404)
    assert_problem(await api.delete("/v1/agents/writer"), 404)
    # Its history stays.
    assert len((await api.get("/v1/agents/writer/versions")).json()["items"]) == 3


async def test_unknown_agents_and_versions_are_404(api: ApiClient) -> None:
    await api.post("/v1/agents", json=CRITIC)
    for path in (
        "/v1/agents/nosuch",
        "/v1/agents/nosuch/versions",
        "/v1/agents/nosuch/history",
        "/v1/agents/critic/versions/9",
        "/v1/agents/critic?version=9",
    ):
        assert_problem(await api.get(path), 404)
    assert_problem(await api.post("/v1/agents/critic/rollback", json={"version": 9}), 404)
    assert_problem(await api.get("/v1/agents/export?name=critic&name=nosuch"), 404)


#: (method, path, JSON body, the field the problem must name: None for the body as a whole)
BAD_REQUESTS: list[tuple[str, str, Any, str | None]] = [
    (
        "POST",
        "/v1/agents",
        {"name": "x", "type": "chain", "sequence": ["nosuch"]},
        "x.sequence[0]",
    ),
    ("POST", "/v1/agents", {"name": "x", "type": "chain", "sequence": [1]}, "sequence[0]"),
    ("POST", "/v1/agents", {"name": "x", "type": "chain"}, "sequence"),
    ("POST", "/v1/agents", {"name": "x", "type": "robot"}, None),
    ("POST", "/v1/agents", {"name": "", "type": "agent"}, "name"),
    ("POST", "/v1/agents", {"name": "x", "type": "agent", "colour": "red"}, "colour"),
    ("POST", "/v1/agents", {"name": "x", "type": "agent", "model": "no-such-model"}, "x.model"),
    ("POST", "/v1/agents", {"name": "x", "type": "agent", "servers": ["nosuch"]}, "x.servers"),
    (
        "POST",
        "/v1/agents",
        {"name": "x", "type": "agent", "instruction": "a\x00b"},
        "instruction",
    ),
    (
        "POST",
        "/v1/agents",
        {"name": "x", "type": "agent", "instruction": "\ud800"},
        "instruction",
    ),
    (
        "POST",
        "/v1/agents",
        {"name": "x", "type": "custom", "agent_class": "no.such.Class"},
        None,
    ),
    ("PUT", "/v1/agents/critic", {**CRITIC, "name": "other"}, "name"),
    ("PUT", "/v1/agents/critic", {**CRITIC, "model": "no-such-model"}, "critic.model"),
    ("PUT", "/v1/agents/review", {**REVIEW, "sequence": ["review"]}, None),
    ("POST", "/v1/agents/critic/rollback", {"version": 0}, "version"),
    ("POST", "/v1/agents/critic/rollback", {}, "version"),
    ("GET", "/v1/agents?type=robot", None, "type[0]"),
    ("GET", "/v1/agents?kind=robots", None, "kind"),
    ("GET", "/v1/agents/critic?version=0", None, "version"),
    ("GET", "/v1/agents/export?format=xml", None, "format"),
]


async def test_bad_input_is_a_problem_naming_the_field_and_changes_nothing(
    api: ApiClient,
) -> None:
    for spec in (WRITER, CRITIC, REVIEW):
        assert (await api.post("/v1/agents", json=spec)).status_code == 201
    before = await _definition_rows(api)
    for method, path, body, field in BAD_REQUESTS:
        # json.dumps escapes what has no UTF-8 form (a lone surrogate) as JSON allows.
        content = None if body is None else json.dumps(body)
        response = await api.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
        case = f"{method} {path} {body!r}"
        assert response.status_code == 422, f"{case}: {response.text}"
        assert_problem(response, 422, *([field] if field else []))
        assert await _definition_rows(api) == before, f"{case} changed something"


async def test_a_dependency_cycle_is_named(api: ApiClient) -> None:
    for spec in (WRITER, CRITIC, REVIEW):
        await api.post("/v1/agents", json=spec)
    response = await api.put("/v1/agents/review", json={**REVIEW, "sequence": ["review"]})
    problem = assert_problem(response, 422)
    assert "review -> review" in problem["detail"]


async def test_deleting_an_agent_a_workflow_uses_is_a_conflict(api: ApiClient) -> None:
    for spec in (WRITER, CRITIC, REVIEW):
        await api.post("/v1/agents", json=spec)
    before = await _definition_rows(api)
    problem = assert_problem(await api.delete("/v1/agents/critic"), 409)
    assert "review" in problem["detail"]
    assert await _definition_rows(api) == before
    assert (await api.delete("/v1/agents/review")).status_code == 204
    assert (await api.delete("/v1/agents/critic")).status_code == 204


async def test_import_yaml_and_json_bundles_and_export_them_back(
    api: ApiClient, database_url: str
) -> None:
    imported = await api.post(
        "/v1/agents/import", content=BUNDLE_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert imported.status_code == 200, imported.text
    results = imported.json()["results"]
    assert [(r["name"], r["outcome"]) for r in results][:3] == [
        ("writer", "created"),
        ("critic", "created"),
        ("review", "created"),
    ]
    exported = await api.get("/v1/agents/export")
    bundle = exported.json()
    assert [spec["name"] for spec in bundle["agents"]] == [
        "writer",
        "critic",
        "review",
        "fan",
        "pick",
        "plan",
        "polish",
    ]
    again = await api.post("/v1/agents/import", json=bundle)
    assert {r["outcome"] for r in again.json()["results"]} == {"unchanged"}

    as_yaml = await api.get("/v1/agents/export?format=yaml&name=review&name=writer")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert [spec["name"] for spec in parse_yaml(as_yaml.text, source="export")["agents"]] == [
        "writer",
        "review",
    ]
    cli_export = await ainvoke("agents", "export", "--database-url", database_url)
    assert parse_yaml(cli_export.stdout, source="cli")["agents"] == bundle["agents"]


#: (body, its media type, the field the problem must name)
BAD_BUNDLES: list[tuple[str, str, str | None]] = [
    (
        BUNDLE_YAML.replace("[writer, critic]}", "[writer, nosuch]}", 1),
        "application/yaml",
        "review.sequence[1]",
    ),
    (
        '{"agents": [{"name": "a", "type": "chain", "sequence": 3}]}',
        "application/json",
        "agents[0].sequence",
    ),
    ('{"agents": 3}', "application/json", "agents"),
    ("{not json", "application/json", "body"),
    ("agents: [", "application/yaml", None),
    (
        '{"agents": [{"name": "a\\u0000", "type": "agent"}]}',
        "application/json",
        "agents[0].name",
    ),
]


async def test_a_bad_bundle_stores_nothing(api: ApiClient) -> None:
    before = await _definition_rows(api)
    for content, media_type, field in BAD_BUNDLES:
        response = await api.post(
            "/v1/agents/import", content=content, headers={"Content-Type": media_type}
        )
        assert response.status_code == 422, f"{content!r}: {response.text}"
        assert_problem(response, 422, *([field] if field else []))
        assert await _definition_rows(api) == before, f"{content!r} changed something"


async def test_list_filters_and_pages(api: ApiClient) -> None:
    await api.post(
        "/v1/agents/import", content=BUNDLE_YAML, headers={"Content-Type": "application/yaml"}
    )
    names: list[str] = []
    cursor = None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/agents?{query}")).json()
        assert len(page["items"]) <= 3
        names.extend(agent["name"] for agent in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(["writer", "critic", "review", "fan", "pick", "plan", "polish"])

    async def listed(query: str) -> list[str]:
        response = await api.get(f"/v1/agents?{query}")
        assert response.status_code == 200, response.text
        return [agent["name"] for agent in response.json()["items"]]

    assert await listed("kind=agent") == ["critic", "writer"]
    assert await listed("kind=workflow") == ["fan", "pick", "plan", "polish", "review"]
    assert await listed("type=chain&type=router") == ["pick", "review"]
    assert await listed("server=fetch") == ["writer"]


async def test_graph_has_every_agent_and_an_edge_per_child(api: ApiClient) -> None:
    await api.post(
        "/v1/agents/import", content=BUNDLE_YAML, headers={"Content-Type": "application/yaml"}
    )
    graph = (await api.get("/v1/agents/graph")).json()
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert set(nodes) == {"writer", "critic", "review", "fan", "pick", "plan", "polish"}
    assert nodes["writer"]["kind"] == "agent" and nodes["writer"]["servers"] == ["fetch"]
    assert nodes["review"]["kind"] == "workflow" and nodes["review"]["type"] == "chain"
    edges = {
        (edge["source"], edge["role"], edge["position"], edge["target"]) for edge in graph["edges"]
    }
    assert edges == {
        ("review", "sequence", 0, "writer"),
        ("review", "sequence", 1, "critic"),
        ("fan", "fan_out", 0, "writer"),
        ("fan", "fan_out", 1, "critic"),
        ("fan", "fan_in", 0, "critic"),
        ("pick", "router_target", 0, "writer"),
        ("pick", "router_target", 1, "critic"),
        ("plan", "orchestrated", 0, "review"),
        ("plan", "orchestrated", 1, "writer"),
        ("polish", "generator", 0, "writer"),
        ("polish", "evaluator", 0, "critic"),
    }
    # Every edge joins two nodes: a designer can draw it as is.
    assert all(edge["source"] in nodes and edge["target"] in nodes for edge in graph["edges"])

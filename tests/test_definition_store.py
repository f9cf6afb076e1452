"""One behaviour suite for every definition store: in memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_agent.db.definitions.base import DefinitionStore
from mcp_agent.db.definitions.in_memory import InMemoryDefinitionStore
from mcp_agent.db.definitions.specs import AGENT_SPEC, DefinitionError
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.sql import SqlSettingsStore

STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
]


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[DefinitionStore]:
    if backend == "memory":
        yield InMemoryDefinitionStore(known_servers={"calc"})
        return
    runtime = await DatabaseRuntime.open(request.getfixturevalue("database_url"))
    await SqlSettingsStore(runtime).update(
        lambda document: edits.add_server(document, "calc", {"command": "python"})
    )
    yield SqlDefinitionStore(runtime)
    await runtime.close()


def spec(**values):
    return AGENT_SPEC.validate_python(values)


EVERY_TYPE = [
    spec(
        name="writer",
        type="agent",
        instruction="Write.",
        servers=["calc"],
        model="passthrough",
        request_params={"maxTokens": 512, "temperature": 0.2},
        human_input=True,
    ),
    spec(name="critic", type="agent"),
    spec(name="special", type="custom", agent_class="mcp_agent.agents.agent.Agent"),
    spec(name="pipeline", type="chain", sequence=["writer", "critic"], cumulative=True),
    spec(
        name="fan",
        type="parallel",
        fan_out=["writer", "critic"],
        fan_in="critic",
        include_request=False,
    ),
    spec(name="route", type="router", agents=["writer", "critic"], instruction="Pick one."),
    spec(
        name="plan",
        type="orchestrator",
        agents=["writer", "pipeline"],
        plan_type="iterative",
        plan_iterations=2,
    ),
    spec(
        name="refine",
        type="evaluator_optimizer",
        generator="writer",
        evaluator="critic",
        min_rating="EXCELLENT",
        max_refinements=1,
    ),
]


async def test_every_type_is_stored_and_loaded_unchanged(store: DefinitionStore) -> None:
    results = await store.put(EVERY_TYPE, source="test")
    assert {r.outcome for r in results} == {"created"}
    current = await store.current()
    assert sorted(current) == sorted(s.name for s in EVERY_TYPE)
    for original in EVERY_TYPE:
        stored = current[original.name].spec
        explicit = original.model_dump(exclude_unset=True)
        assert {k: v for k, v in stored.model_dump().items() if k in explicit} == explicit
        assert stored.instruction  # upstream's default made explicit


async def test_versions_only_on_change_and_rollback(store: DefinitionStore) -> None:
    await store.put(EVERY_TYPE[:2], source="test")
    again = await store.put(EVERY_TYPE[:2], source="test")
    assert [r.outcome for r in again] == ["unchanged", "unchanged"]

    changed = spec(name="writer", type="agent", instruction="Write better.")
    assert (await store.put([changed], source="cli"))[0].version == 2
    assert [d.version for d in await store.versions("writer")] == [1, 2]
    assert (await store.get("writer", 1)).spec.instruction == "Write."

    rolled = await store.rollback("writer", 1)
    assert (rolled.version, rolled.outcome) == (3, "updated")
    latest = await store.get("writer")
    assert latest.spec == (await store.get("writer", 1)).spec
    assert latest.source == "rollback"


async def test_delete_is_refused_while_referenced(store: DefinitionStore) -> None:
    await store.put(EVERY_TYPE, source="test")
    with pytest.raises(DefinitionError) as refused:
        await store.delete("critic")
    assert "used by fan, pipeline, refine, route" in str(refused.value)
    await store.delete("refine")
    assert "refine" not in await store.current()
    assert len(await store.versions("refine")) == 1, "history survives a delete"
    with pytest.raises(DefinitionError, match="no such agent"):
        await store.get("refine")


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            [
                spec(name="a", type="chain", sequence=["b"]),
                spec(name="b", type="chain", sequence=["a"]),
            ],
            "dependency cycle: a -> b -> a",
        ),
        (
            [spec(name="a", type="chain", sequence=["ghost"])],
            "a.sequence[0]: unknown agent 'ghost'",
        ),
        (
            [spec(name="a", type="agent", servers=["nowhere"])],
            "a.servers: unknown MCP server 'nowhere'",
        ),
        ([spec(name="a", type="agent", model="no-such-model")], "a.model: unknown model"),
        ([spec(name="a", type="chain", sequence=[])], "requires at least one agent"),
        (
            [
                spec(name="c", type="custom", agent_class="mcp_agent.agents.agent.Agent"),
                spec(name="o", type="orchestrator", agents=["c"]),
            ],
            "o.orchestrated[0]: upstream's orchestrator cannot use a custom agent",
        ),
        (
            [spec(name="c", type="custom", agent_class="no.such.Module")],
            "c.agent_class: cannot import the agent class 'no.such.Module'",
        ),
        ([spec(name="a", type="agent"), spec(name="a", type="agent")], "a: defined more than once"),
    ],
)
async def test_invalid_definitions_are_refused_and_nothing_is_written(
    store: DefinitionStore, specs, message: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        await store.put(specs, source="test")
    assert message in str(refused.value)
    assert await store.current() == {}

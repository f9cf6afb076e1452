"""DefinitionStore: every agent type stored and loaded unchanged, a new version only on
change, rollback, delete, versions, and invalid definitions refused whole.

An agent names its MCP servers; the servers a store accepts are those its bundle's settings
store holds (`add_servers`)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_agent.db.definitions.specs import AGENT_SPEC, AgentSpec, DefinitionError
from mcp_agent.db.settings import edits
from tests.conformance.stores import Stores


async def add_servers(stores: Stores, *names: str) -> None:
    for name in names:
        await stores.settings.update(
            lambda document, name=name: edits.add_server(document, name, {"command": "python"})
        )


@pytest.fixture
async def stores_with_calc(stores: Stores) -> Stores:
    await add_servers(stores, "calc")
    return stores


def spec(**values: Any) -> AgentSpec:
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


async def test_every_type_is_stored_and_loaded_unchanged(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    results = await store.put(EVERY_TYPE, source="test")
    assert {r.outcome for r in results} == {"created"}
    current = await store.current()
    assert sorted(current) == sorted(s.name for s in EVERY_TYPE)
    for original in EVERY_TYPE:
        stored = current[original.name].spec
        explicit = original.model_dump(exclude_unset=True)
        assert {k: v for k, v in stored.model_dump().items() if k in explicit} == explicit
        assert stored.instruction  # upstream's default made explicit


async def test_current_narrows_to_the_names_asked_for(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    await store.put(EVERY_TYPE, source="test")
    assert sorted(await store.current(["writer", "fan", "ghost"])) == ["fan", "writer"]
    assert await store.current([]) == {}


async def test_versions_only_on_change_and_rollback(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
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


async def test_versions_keep_who_wrote_them_and_why(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    first = spec(name="writer", type="agent", instruction="Write.")
    await store.put([first], source="bundle", created_by="alice")
    await store.put([spec(name="writer", type="agent", instruction="Write more.")], source="cli")
    rolled = await store.rollback("writer", 1, created_by="bob")
    assert rolled.name == "writer"
    versions = await store.versions("writer")
    assert [(d.version, d.source, d.created_by) for d in versions] == [
        (1, "bundle", "alice"),
        (2, "cli", None),
        (3, "rollback", "bob"),
    ]
    assert versions[0].content_hash == versions[2].content_hash != versions[1].content_hash
    assert all(d.name == "writer" and d.created_at.tzinfo is not None for d in versions)
    assert (await store.current())["writer"] == versions[-1] == await store.get("writer")


async def test_rollback_to_the_current_version_changes_nothing(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    await store.put(EVERY_TYPE[:1], source="test")
    rolled = await store.rollback("writer", 1)
    assert (rolled.version, rolled.outcome) == (1, "unchanged")
    assert len(await store.versions("writer")) == 1
    with pytest.raises(DefinitionError, match="writer version 9: no such agent definition"):
        await store.rollback("writer", 9)
    with pytest.raises(DefinitionError, match="ghost version 1: no such agent definition"):
        await store.rollback("ghost", 1)


async def test_rollback_is_refused_when_what_it_refers_to_is_gone(
    stores_with_calc: Stores,
) -> None:
    store = stores_with_calc.definitions
    await store.put(
        [
            spec(name="a", type="agent"),
            spec(name="b", type="agent"),
            spec(name="flow", type="chain", sequence=["a", "b"]),
        ],
        source="test",
    )
    await store.put([spec(name="flow", type="chain", sequence=["a"])], source="test")
    await store.delete("b")
    with pytest.raises(DefinitionError, match="unknown agent 'b'"):
        await store.rollback("flow", 1)
    assert (await store.get("flow")).version == 2


async def test_unknown_agents_and_versions_are_named(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    await store.put(EVERY_TYPE[:1], source="test")
    with pytest.raises(DefinitionError, match="ghost: no such agent definition"):
        await store.get("ghost")
    with pytest.raises(DefinitionError, match="writer version 2: no such agent definition"):
        await store.get("writer", 2)
    with pytest.raises(DefinitionError, match="ghost: no such agent definition"):
        await store.versions("ghost")
    with pytest.raises(DefinitionError, match="ghost: no such agent definition"):
        await store.delete("ghost")


async def test_delete_is_refused_while_referenced(stores_with_calc: Stores) -> None:
    store = stores_with_calc.definitions
    await store.put(EVERY_TYPE, source="test")
    with pytest.raises(DefinitionError) as refused:
        await store.delete("critic")
    assert "used by fan, pipeline, refine, route" in str(refused.value)
    await store.delete("refine")
    assert "refine" not in await store.current()
    assert len(await store.versions("refine")) == 1, "history survives a delete"
    with pytest.raises(DefinitionError, match="no such agent"):
        await store.get("refine")


async def test_a_deleted_agent_keeps_its_versions_and_can_come_back(
    stores_with_calc: Stores,
) -> None:
    store = stores_with_calc.definitions
    writer = spec(name="writer", type="agent", instruction="Write.")
    await store.put([writer], source="test")
    await store.delete("writer")
    assert (await store.get("writer", 1)).spec == (await store.versions("writer"))[0].spec
    with pytest.raises(DefinitionError, match="writer: no such agent definition"):
        await store.delete("writer")
    with pytest.raises(DefinitionError, match="unknown agent 'writer'"):
        await store.put([spec(name="flow", type="chain", sequence=["writer"])], source="test")

    (back,) = await store.put([writer], source="test")
    assert (back.version, back.outcome) == (2, "created")
    assert [d.version for d in await store.versions("writer")] == [1, 2]
    assert (await store.get("writer")).version == 2


async def test_a_refused_put_leaves_the_stored_agents_as_they_were(
    stores_with_calc: Stores,
) -> None:
    store = stores_with_calc.definitions
    await store.put(EVERY_TYPE, source="test")
    before = await store.current()
    with pytest.raises(DefinitionError, match="unknown agent 'ghost'"):
        await store.put(
            [
                spec(name="writer", type="agent", instruction="Changed."),
                spec(name="newcomer", type="agent"),
                spec(name="pipeline", type="chain", sequence=["ghost"]),
            ],
            source="test",
        )
    assert await store.current() == before
    assert [d.version for d in await store.versions("writer")] == [1]
    with pytest.raises(DefinitionError):
        await store.versions("newcomer")


async def test_servers_are_those_the_settings_hold(stores: Stores) -> None:
    store = stores.definitions
    uses_notes = spec(name="a", type="agent", servers=["notes"])
    with pytest.raises(DefinitionError, match="a.servers: unknown MCP server 'notes'"):
        await store.put([uses_notes], source="test")
    await add_servers(stores, "notes")
    (created,) = await store.put([uses_notes], source="test")
    assert created.outcome == "created"


#: (specs, what the refusal says). One store takes them all: a refused put writes nothing.
INVALID = [
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
]


async def test_invalid_definitions_are_refused_and_nothing_is_written(
    stores_with_calc: Stores,
) -> None:
    store = stores_with_calc.definitions
    for specs, message in INVALID:
        with pytest.raises(DefinitionError) as refused:
            await store.put(specs, source="test")
        assert message in str(refused.value)
        assert await store.current() == {}, message

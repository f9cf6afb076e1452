"""ExecutionStore: the log the turn store writes, read as roots and trees, and rows left
`running` by dead workers marked interrupted."""

from __future__ import annotations

from datetime import timedelta

from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.tracking import WORKER_ID, interrupt_dead_workers
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.turns.base import CallEnd
from tests.conformance.stores import Stores

T0 = utc_now() - timedelta(hours=1)


async def begin(
    stores: Stores,
    execution_id: str,
    *,
    parent: str | None = None,
    minute: int = 0,
    worker_id: str = "w",
) -> None:
    await stores.turns.start_call(
        ExecutionStart(
            execution_id=execution_id,
            parent_execution_id=parent,
            agent_name=execution_id.split("-")[0],
            agent_version_id=None,
            operation="generate",
            started_at=T0 + timedelta(minutes=minute),
            worker_id=worker_id,
        )
    )


async def finish(stores: Stores, execution_id: str, minute: int) -> None:
    await stores.turns.end_call(CallEnd(execution_id, "completed", T0 + timedelta(minutes=minute)))


async def a_workflow_and_a_lone_call(stores: Stores) -> None:
    """pipeline-1 (minute 0) runs first-1, then second-1 which calls tool-1; lone-1 at
    minute 10; all completed."""
    await begin(stores, "pipeline-1", minute=0)
    await begin(stores, "first-1", parent="pipeline-1", minute=1)
    await finish(stores, "first-1", 2)
    await begin(stores, "second-1", parent="pipeline-1", minute=3)
    await begin(stores, "tool-1", parent="second-1", minute=4)
    await finish(stores, "tool-1", 5)
    await finish(stores, "second-1", 6)
    await finish(stores, "pipeline-1", 7)
    await begin(stores, "lone-1", minute=10)
    await finish(stores, "lone-1", 11)


async def test_roots_are_the_calls_without_a_parent_newest_first(stores: Stores) -> None:
    assert await stores.executions.roots() == []
    await a_workflow_and_a_lone_call(stores)
    roots = await stores.executions.roots()
    assert [r.execution_id for r in roots] == ["lone-1", "pipeline-1"]
    assert all(r.parent_execution_id is None and r.status == "completed" for r in roots)
    assert [r.execution_id for r in await stores.executions.roots(limit=1)] == ["lone-1"]


async def test_a_tree_is_the_call_and_its_descendants_parents_first(stores: Stores) -> None:
    await a_workflow_and_a_lone_call(stores)
    tree = await stores.executions.tree("pipeline-1")
    assert [r.execution_id for r in tree] == ["pipeline-1", "first-1", "second-1", "tool-1"]
    parents = {r.execution_id: r.parent_execution_id for r in tree}
    assert parents == {
        "pipeline-1": None,
        "first-1": "pipeline-1",
        "second-1": "pipeline-1",
        "tool-1": "second-1",
    }
    pipeline = tree[0]
    assert pipeline.duration_seconds == 7 * 60
    assert [r.execution_id for r in await stores.executions.tree("second-1")] == [
        "second-1",
        "tool-1",
    ]
    assert [r.execution_id for r in await stores.executions.tree("lone-1")] == ["lone-1"]
    assert await stores.executions.tree("ghost") == []


async def test_running_workers_are_those_with_calls_still_running(stores: Stores) -> None:
    assert await stores.executions.running_workers() == []
    await begin(stores, "done-1", worker_id="finished")
    await finish(stores, "done-1", 1)
    await begin(stores, "left-1", worker_id="left")
    await begin(stores, "left-2", worker_id="left", minute=1)
    await begin(stores, "right-1", worker_id="right")
    assert sorted(await stores.executions.running_workers()) == ["left", "right"]


async def test_only_running_calls_of_the_workers_named_are_interrupted(stores: Stores) -> None:
    await begin(stores, "done-1", worker_id="dead")
    await finish(stores, "done-1", 1)
    await begin(stores, "root-1", worker_id="dead", minute=2)
    await begin(stores, "child-1", parent="root-1", worker_id="dead", minute=3)
    await begin(stores, "other-1", worker_id="alive", minute=4)

    assert await stores.executions.mark_interrupted([]) == 0
    assert await stores.executions.mark_interrupted(["nobody"]) == 0
    assert await stores.executions.mark_interrupted(["dead"]) == 2
    status = {
        r.execution_id: r.status
        for root in await stores.executions.roots()
        for r in await stores.executions.tree(root.execution_id)
    }
    assert status == {
        "done-1": "completed",
        "root-1": "interrupted",
        "child-1": "interrupted",
        "other-1": "running",
    }
    assert await stores.executions.running_workers() == ["alive"]
    assert await stores.executions.mark_interrupted(["dead"]) == 0, "only running rows"


async def test_rows_of_a_dead_worker_are_marked_interrupted(stores: Stores) -> None:
    for execution_id, worker in (
        ("dead", WORKER_ID.rsplit(":", 1)[0] + ":999999999"),
        ("alive", WORKER_ID),
        ("elsewhere", "other-host:1"),
    ):
        await stores.turns.start_call(
            ExecutionStart(
                execution_id=execution_id,
                parent_execution_id=None,
                agent_name="a",
                agent_version_id=None,
                operation="generate",
                started_at=utc_now(),
                worker_id=worker,
            )
        )
    assert await interrupt_dead_workers(stores.executions) == 1
    status = {r.execution_id: r.status for r in await stores.executions.roots()}
    assert status == {"dead": "interrupted", "alive": "running", "elsewhere": "running"}

"""TurnStore: a call's start, and its end with usage, totals and turn stored together.

What the end of a call stores is read back through the bundle's other stores: its record
through `executions`, its turn through `conversations`.

SQL-only and kept in tests/test_turn_store.py: a branch continuing after its branch point
(branches are the SQL conversation store's), a database that stops answering, and the
write pool's size."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.errors import CallNotStartedError, SessionError
from mcp_agent.db.executions.base import ExecutionRecord, ExecutionStart
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.turns.base import CallEnd
from tests.conformance.stores import Stores


def start(
    execution_id: str,
    session_id: str | None = "s",
    *,
    parent: str | None = None,
    worker_id: str = "w",
    agent_name: str = "agent",
) -> ExecutionStart:
    return ExecutionStart(
        execution_id=execution_id,
        parent_execution_id=parent,
        agent_name=agent_name,
        agent_version_id=None,
        operation="generate",
        started_at=utc_now(),
        worker_id=worker_id,
        session_id=session_id,
    )


def turn(*texts: str, session_id: str = "s") -> PendingTurn:
    return PendingTurn(
        session_id,
        "agent",
        [
            NewMessage(
                Prompt.user(text) if index % 2 == 0 else Prompt.assistant(text),
                provider_messages=[{"role": "assistant", "content": text}] if index % 2 else None,
                provider="openai",
                model="gpt-test",
            )
            for index, text in enumerate(texts)
        ],
    )


USAGE = UsageTurn(
    provider="openai",
    model="gpt-test",
    input_tokens=10,
    output_tokens=5,
    cache_read_tokens=0,
    cache_write_tokens=0,
    reasoning_tokens=0,
    tool_use_tokens=0,
    cost=Decimal("0.0015"),
    raw_usage={"prompt_tokens": 10},
)


async def record_of(stores: Stores, execution_id: str) -> ExecutionRecord:
    (record,) = [r for r in await stores.executions.tree(execution_id)]
    return record


async def status(stores: Stores, execution_id: str) -> tuple[str, int, Decimal | None]:
    record = await record_of(stores, execution_id)
    return record.status, record.input_tokens, record.cost


async def test_a_call_ends_with_its_turn_usage_and_totals(stores: Stores) -> None:
    await stores.conversations.ensure_session("s")
    await stores.turns.start_call(start("e1"))
    assert (await status(stores, "e1"))[0] == "running"
    totals = UsageTotals()
    totals.add_turn(USAGE)
    sequences = await stores.turns.end_call(
        CallEnd("e1", "completed", utc_now(), totals=totals, usage=[USAGE], turn=turn("q", "a"))
    )
    assert sequences == [1, 2]
    assert await status(stores, "e1") == ("completed", 10, Decimal("0.0015"))
    await stores.turns.start_call(start("e2"))
    assert await stores.turns.end_call(
        CallEnd("e2", "completed", utc_now(), turn=turn("q2", "a2 \x00 nul"))
    ) == [3, 4]
    history = await stores.conversations.load("s", "agent")
    assert [m.content.all_text() for m in history] == ["q", "a", "q2", "a2 \x00 nul"]
    assert history[1].provider_messages == [{"role": "assistant", "content": "a"}]
    assert history[0].provider_messages is None


async def test_the_record_holds_the_start_and_the_end(stores: Stores) -> None:
    await stores.conversations.ensure_session("s")
    begun = start("e1", agent_name="writer")
    await stores.turns.start_call(begun)
    running = await record_of(stores, "e1")
    assert (running.agent_name, running.operation, running.session_id) == (
        "writer",
        "generate",
        "s",
    )
    assert running.started_at == begun.started_at
    assert (running.finished_at, running.error, running.duration_seconds) == (None, None, None)

    totals = UsageTotals()
    totals.add_turn(USAGE)
    finished_at = utc_now()
    await stores.turns.end_call(
        CallEnd("e1", "failed", finished_at, error="the model refused", totals=totals)
    )
    ended = await record_of(stores, "e1")
    assert (ended.status, ended.error, ended.finished_at) == (
        "failed",
        "the model refused",
        finished_at,
    )
    assert (ended.input_tokens, ended.output_tokens, ended.model) == (10, 5, "gpt-test")
    assert ended.duration_seconds is not None and ended.duration_seconds >= 0
    assert await stores.conversations.load("s", "agent") == [], "no turn, no messages"


async def test_a_missing_session_fails_the_end_and_changes_nothing(stores: Stores) -> None:
    await stores.turns.start_call(start("e1", session_id=None))
    with pytest.raises(SessionError, match="nosuch"):
        await stores.turns.end_call(
            CallEnd("e1", "completed", utc_now(), turn=turn("q", "a", session_id="nosuch"))
        )
    assert (await status(stores, "e1"))[0] == "running"
    # A failed call without a turn keeps the totals it had.
    await stores.turns.end_call(CallEnd("e1", "failed", utc_now(), error="boom"))
    assert await status(stores, "e1") == ("failed", 0, None)


async def test_the_end_of_a_call_never_started_stores_nothing(stores: Stores) -> None:
    """On PostgreSQL a start is committed without waiting for the disk (migration 0006): a
    server crash can lose it, and its end must then store nothing rather than orphans."""
    await stores.conversations.ensure_session("s")
    with pytest.raises(CallNotStartedError, match="ghost"):
        await stores.turns.end_call(
            CallEnd("ghost", "completed", utc_now(), usage=[USAGE], turn=turn("q", "a"))
        )
    assert await stores.conversations.load("s", "agent") == []
    assert await stores.executions.tree("ghost") == []


async def test_concurrent_ends_on_one_session_get_gap_free_sequences(stores: Stores) -> None:
    await stores.conversations.ensure_session("s")
    ids = [f"e{number}" for number in range(12)]
    for execution_id in ids:
        await stores.turns.start_call(start(execution_id))
    results = await asyncio.gather(
        *(
            stores.turns.end_call(
                CallEnd(execution_id, "completed", utc_now(), turn=turn("q", "a"))
            )
            for execution_id in ids
        )
    )
    assert sorted(sequence for pair in results for sequence in pair) == list(range(1, 25))
    assert [m.sequence for m in await stores.conversations.load("s", "agent")] == list(range(1, 25))

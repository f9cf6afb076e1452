"""RunJournal, and the turn store's writes of a durable run: every write fenced by the run's
lease epoch; `call` steps stored with their turn.

A write is refused (LeaseLostError, saying which epoch was lost and what the run is now) once
the run is not `running` at the writer's epoch, and nothing of it is stored: no step, no
execution row, no turn, no usage. Writes outside a durable run (no fence) are unchanged.
"""

from __future__ import annotations

import pytest
from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.journal import Fence, JournalStep, step_key
from mcp_agent.db.turns.base import CallEnd
from tests.conformance.stores import Stores

RUN = "00000000-0000-4000-8000-000000000001"


def llm_step(key: str, epoch: int, body: bytes = b"data: {}\n\n") -> JournalStep:
    return JournalStep(
        run_id=RUN,
        step_key=key,
        kind="llm",
        agent_name="agent",
        lease_epoch=epoch,
        response={"status": 200, "headers": [["content-type", "text/event-stream"]]},
        body=body,
    )


def start(execution_id: str) -> ExecutionStart:
    return ExecutionStart(
        execution_id=execution_id,
        parent_execution_id=None,
        agent_name="agent",
        agent_version_id=None,
        operation="generate",
        started_at=utc_now(),
        worker_id="w",
        session_id="s",
    )


def turn(*texts: str) -> PendingTurn:
    return PendingTurn(
        "s",
        "agent",
        [
            NewMessage(Prompt.user(text) if index % 2 == 0 else Prompt.assistant(text))
            for index, text in enumerate(texts)
        ],
    )


def test_step_keys_differ_by_kind_agent_request_and_occurrence() -> None:
    keys = {
        step_key("llm", "a", b"request", 0),
        step_key("tool", "a", b"request", 0),
        step_key("llm", "b", b"request", 0),
        step_key("llm", "a", b"other", 0),
        step_key("llm", "a", b"request", 1),
    }
    assert len(keys) == 5
    assert step_key("llm", "a", b"request", 0) == step_key("llm", "a", b"request", 0)
    assert all(len(key) == 64 for key in keys)


async def test_steps_are_stored_byte_for_byte_and_read_back_by_a_later_attempt(
    stores: Stores,
) -> None:
    await stores.hold_run(RUN, 1)
    body = bytes(range(256)) + "é\u2028\0".encode()
    assert await stores.journal.put(llm_step("k1", 1, body)) is True
    # Text a tool or a model may return that jsonb cannot hold as it is: NUL, a lone surrogate.
    odd = {"type": "text", "text": "a\x00b \ud800 \ue000"}
    tool = JournalStep(RUN, "k2", "tool", "agent", 1, {"name": "t", "result": {"content": [odd]}})
    assert await stores.journal.put(tool) is True
    # The same key again keeps the first.
    assert await stores.journal.put(llm_step("k1", 1, b"other")) is False

    await stores.hold_run(RUN, 2)
    steps = await stores.journal.begin_attempt(Fence(RUN, 2))
    assert set(steps) == {"k1", "k2"}
    assert steps["k1"].body == body and steps["k1"].lease_epoch == 1
    assert steps["k1"].response == llm_step("k1", 1).response
    assert steps["k2"].body is None and steps["k2"].response == tool.response


@pytest.mark.parametrize("status", ["running", "queued", "completed"])
async def test_a_write_with_a_lost_lease_is_refused_and_nothing_is_stored(
    stores: Stores, status: str
) -> None:
    await stores.hold_run(RUN, 2, status)
    with pytest.raises(LeaseLostError) as refused:
        await stores.journal.put(llm_step("k1", 1))
    message = str(refused.value)
    assert RUN in message and "the lease of epoch 1 was lost" in message
    assert ("epoch 2" in message) and (status in message or "claimed again" in message)
    with pytest.raises(LeaseLostError):
        await stores.journal.begin_attempt(Fence(RUN, 1))
    await stores.hold_run(RUN, 3)
    assert await stores.journal.begin_attempt(Fence(RUN, 3)) == {}


async def test_a_run_that_does_not_exist_refuses_its_writes(stores: Stores) -> None:
    with pytest.raises(LeaseLostError, match="no longer exists"):
        await stores.journal.put(llm_step("k1", 1))


async def test_a_call_step_is_stored_with_its_turn_and_a_fenced_call_is_refused_whole(
    stores: Stores,
) -> None:
    await stores.conversations.ensure_session("s")
    await stores.hold_run(RUN, 1)
    fence = Fence(RUN, 1)
    await stores.turns.start_call(start("e1"), fence=fence)
    reply = {"reply": {"role": "assistant", "content": [{"type": "text", "text": "hi\x00"}]}}
    step = JournalStep(RUN, "call-1", "call", "agent", 1, reply)
    await stores.turns.end_call(
        CallEnd("e1", "completed", utc_now(), turn=turn("hello", "hi"), fence=fence, step=step)
    )
    assert len(await stores.conversations.load("s", "agent")) == 2
    assert (await stores.journal.begin_attempt(fence))["call-1"].response == reply

    # Another worker claims the run: the first one's start and end are refused whole.
    await stores.turns.start_call(start("e2"), fence=fence)
    await stores.hold_run(RUN, 2)
    with pytest.raises(LeaseLostError, match="the lease of epoch 1 was lost"):
        await stores.turns.start_call(start("e3"), fence=fence)
    late = JournalStep(RUN, "call-2", "call", "agent", 1, reply)
    with pytest.raises(LeaseLostError, match="the lease of epoch 1 was lost"):
        await stores.turns.end_call(
            CallEnd("e2", "completed", utc_now(), turn=turn("again", "no"), fence=fence, step=late)
        )
    assert len(await stores.conversations.load("s", "agent")) == 2
    steps = await stores.journal.begin_attempt(Fence(RUN, 2))
    assert set(steps) == {"call-1"}
    tree = {record.execution_id: record for record in await stores.executions.tree("e2")}
    # e2's running row is the lost attempt's: the next attempt marked it interrupted.
    assert tree["e2"].status == "interrupted"
    assert await stores.executions.tree("e3") == []


async def test_writes_outside_a_durable_run_pay_no_fence(stores: Stores) -> None:
    await stores.conversations.ensure_session("s")
    await stores.turns.start_call(start("e1"))
    await stores.turns.end_call(CallEnd("e1", "completed", utc_now(), turn=turn("a", "b")))
    assert len(await stores.conversations.load("s", "agent")) == 2

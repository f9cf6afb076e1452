"""RunStore: submit, read, cancel, and the workers' claim, renew and finish, the same on every
backend; bad input changes nothing; concurrent claimers never share a run."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from mcp_agent.db.definitions.specs import AGENT_SPEC
from mcp_agent.db.errors import (
    DuplicateRunError,
    InputError,
    LeaseLostError,
    RunEndedError,
    UnknownValueError,
)
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import RunOutcome, RunStore, RunSubmission
from mcp_agent.db.runs.in_memory import InMemoryRunStore
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.webhooks.in_memory import InMemoryWebhookStore
from tests.conformance.stores import Stores

LEASE_S = 30.0


def run_store(stores: Stores, *, retry_backoff_s: float) -> RunStore:
    """A run store like the bundle's (sharing its definitions, sessions and webhooks) with
    another retry backoff."""
    if stores.runtime is None:
        assert isinstance(stores.webhooks, InMemoryWebhookStore)
        return InMemoryRunStore(
            definitions=stores.definitions,
            conversations=stores.conversations,
            webhooks=stores.webhooks,
            retry_backoff_s=retry_backoff_s,
        )
    return SqlRunStore(
        stores.runtime, definitions=stores.definitions, retry_backoff_s=retry_backoff_s
    )


@pytest.fixture
async def runs(stores: Stores) -> RunStore:
    await stores.definitions.put(
        [
            AGENT_SPEC.validate_python({"name": "echo", "type": "agent", "model": "passthrough"}),
            AGENT_SPEC.validate_python({"name": "other", "type": "agent", "model": "passthrough"}),
        ],
        source="test",
    )
    return stores.runs


def submission(**values: Any) -> RunSubmission:
    return RunSubmission(**{"agent_name": "echo", "message": "hello", **values})


async def test_submit_queues_the_run_in_a_new_session(stores: Stores, runs: RunStore) -> None:
    run = await runs.submit(submission(model="passthrough", max_attempts=5))
    assert (run.status, run.attempts, run.max_attempts, run.lease_epoch) == ("queued", 0, 5, 0)
    assert (run.agent_name, run.message, run.model, run.caller) == (
        "echo",
        "hello",
        "passthrough",
        "library",
    )
    assert run.session_id is not None
    # The session exists already: ensure_session made nothing.
    assert await stores.conversations.ensure_session(run.session_id) is False
    assert await runs.get(run.run_id) == run
    assert await runs.get(run.run_id[:8]) == run
    second = await runs.submit(submission(session_id=run.session_id))
    assert second.session_id == run.session_id


async def test_a_named_session_is_made_when_missing(stores: Stores, runs: RunStore) -> None:
    run = await runs.submit(submission(session_id="my-session"))
    assert run.session_id == "my-session"
    assert await stores.conversations.ensure_session("my-session") is False


@pytest.mark.parametrize(
    ("values", "error", "names"),
    [
        ({"agent_name": "nosuch"}, UnknownValueError, ["'nosuch'", "echo", "other"]),
        ({"agent_name": " "}, InputError, ["agent"]),
        ({"message": ""}, InputError, ["message"]),
        ({"message": "a\x00b"}, InputError, ["message", "NUL"]),
        ({"deadline": utc_now() - timedelta(seconds=1)}, InputError, ["deadline", "future"]),
        ({"max_attempts": 0}, InputError, ["max_attempts", "at least 1"]),
        ({"idempotency_key": ""}, InputError, ["idempotency_key"]),
        ({"webhook_url": "ftp://example.com/"}, InputError, ["webhook"]),
        ({"webhook_url": "https://example.com/", "webhook_secret_ref": "plain"}, InputError, []),
    ],
)
async def test_bad_input_is_named_and_changes_nothing(
    stores: Stores, runs: RunStore, values: dict[str, Any], error: type[Exception], names: list[str]
) -> None:
    with pytest.raises(error) as raised:
        await runs.submit(submission(session_id="never-made", **values))
    for name in names:
        assert name in str(raised.value)
    assert await runs.list() == []
    assert await stores.conversations.ensure_session("never-made") is True  # it was not there


async def test_an_idempotency_key_is_used_once_per_caller(runs: RunStore) -> None:
    first = await runs.submit(submission(idempotency_key="k1", caller="alice"))
    with pytest.raises(DuplicateRunError) as raised:
        await runs.submit(submission(idempotency_key="k1", caller="alice", message="again"))
    assert raised.value.existing_run_id == first.run_id
    assert first.run_id in str(raised.value) and "'k1'" in str(raised.value)
    assert [run.run_id for run in await runs.list()] == [first.run_id]
    # Another caller's key space is its own.
    other = await runs.submit(submission(idempotency_key="k1", caller="bob"))
    assert {run.run_id for run in await runs.list()} == {first.run_id, other.run_id}


async def test_list_filters_newest_first(runs: RunStore) -> None:
    a = await runs.submit(submission(session_id="s1"))
    b = await runs.submit(submission(agent_name="other", session_id="s1"))
    c = await runs.submit(submission(session_id="s2"))
    await runs.cancel(c.run_id)
    assert [run.run_id for run in await runs.list()] == [c.run_id, b.run_id, a.run_id]
    assert [run.run_id for run in await runs.list(limit=2)] == [c.run_id, b.run_id]
    assert [run.run_id for run in await runs.list(agent_name="other")] == [b.run_id]
    assert [run.run_id for run in await runs.list(session_id="s1")] == [b.run_id, a.run_id]
    assert [run.run_id for run in await runs.list(status="cancelled")] == [c.run_id]
    assert [run.run_id for run in await runs.list(status="queued", session_id="s2")] == []
    with pytest.raises(InputError):
        await runs.list(limit=0)


async def test_unknown_runs_are_named(runs: RunStore) -> None:
    with pytest.raises(UnknownValueError, match="no run 'nosuch-run'"):
        await runs.get("nosuch-run")
    with pytest.raises(UnknownValueError, match="no run"):
        await runs.cancel("nosuch-run")


async def test_a_queued_run_cancelled_never_starts(runs: RunStore) -> None:
    run = await runs.submit(submission())
    cancelled = await runs.cancel(run.run_id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert await runs.claim("w1", lease_seconds=LEASE_S) is None
    with pytest.raises(RunEndedError, match="has ended \\(cancelled"):
        await runs.cancel(run.run_id)


async def test_claim_runs_the_oldest_and_holds_it(runs: RunStore) -> None:
    first = await runs.submit(submission(message="one"))
    second = await runs.submit(submission(message="two"))
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None and claimed.run.run_id == first.run_id
    run = claimed.run
    assert (run.status, run.attempts, run.lease_epoch, run.lease_owner) == ("running", 1, 1, "w1")
    assert run.started_at is not None and run.lease_expires_at == claimed.lease.expires_at
    assert claimed.lease.epoch == 1 and claimed.lease.worker_id == "w1"
    other = await runs.claim("w2", lease_seconds=LEASE_S)
    assert other is not None and other.run.run_id == second.run_id
    assert await runs.claim("w3", lease_seconds=LEASE_S) is None
    assert await runs.renew(claimed.lease, lease_seconds=LEASE_S) is False
    done = await runs.finish(claimed.lease, RunOutcome("completed", result="hi"))
    assert (done.status, done.result, done.error) == ("completed", "hi", None)
    assert (await runs.get(first.run_id)).finished_at is not None
    # Ended: the lease is gone with it.
    with pytest.raises(LeaseLostError, match="is completed"):
        await runs.finish(claimed.lease, RunOutcome("failed", error="late"))
    with pytest.raises(LeaseLostError):
        await runs.renew(claimed.lease, lease_seconds=LEASE_S)
    assert (await runs.get(first.run_id)).status == "completed"


async def test_a_running_run_cancelled_is_told_at_its_heartbeat(runs: RunStore) -> None:
    run = await runs.submit(submission())
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    asked = await runs.cancel(run.run_id)
    assert asked.status == "running" and asked.cancel_requested_at is not None
    assert (await runs.cancel(run.run_id)).cancel_requested_at == asked.cancel_requested_at
    assert await runs.renew(claimed.lease, lease_seconds=LEASE_S) is True
    ended = await runs.finish(claimed.lease, RunOutcome("cancelled", error="stopped"))
    assert (ended.status, ended.error) == ("cancelled", "stopped")


async def test_failed_ends_the_run_with_its_reason(runs: RunStore) -> None:
    await runs.submit(submission())
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    failed = await runs.finish(claimed.lease, RunOutcome("failed", error="bad config"))
    assert (failed.status, failed.error) == ("failed", "bad config")
    assert await runs.claim("w1", lease_seconds=LEASE_S) is None


async def test_retry_backs_off_then_fails_when_attempts_run_out(stores: Stores) -> None:
    await stores.definitions.put(
        [AGENT_SPEC.validate_python({"name": "echo", "type": "agent"})], source="test"
    )
    runs = run_store(stores, retry_backoff_s=60)
    run = await runs.submit(submission(max_attempts=2))
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    before = utc_now()
    queued = await runs.finish(claimed.lease, RunOutcome("retry", error="provider 503"))
    assert (queued.status, queued.attempts, queued.error) == ("queued", 1, "provider 503")
    assert queued.not_before >= before + timedelta(seconds=60)
    assert await runs.claim("w1", lease_seconds=LEASE_S) is None  # backing off

    quick = stores.runs
    run = await quick.submit(submission(max_attempts=2, message="quick"))
    first = await quick.claim("w1", lease_seconds=LEASE_S)
    assert first is not None and first.run.run_id == run.run_id
    await quick.finish(first.lease, RunOutcome("retry", error="provider 503"))
    second = await quick.claim("w2", lease_seconds=LEASE_S)
    assert second is not None and second.run.run_id == run.run_id
    assert (second.run.attempts, second.lease.epoch) == (2, 2)
    with pytest.raises(LeaseLostError):  # the first attempt's lease is gone
        await quick.finish(first.lease, RunOutcome("completed", result="late"))
    failed = await quick.finish(second.lease, RunOutcome("retry", error="provider 503 again"))
    assert failed.status == "failed"
    assert failed.error is not None and "provider 503 again" in failed.error
    assert "attempt 2 of 2" in failed.error


async def test_handed_back_is_queued_at_once_and_not_counted(runs: RunStore) -> None:
    run = await runs.submit(submission())
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    back = await runs.finish(claimed.lease, RunOutcome("handed_back"))
    assert (back.status, back.attempts, back.lease_owner) == ("queued", 0, None)
    again = await runs.claim("w2", lease_seconds=LEASE_S)
    assert again is not None and again.run.run_id == run.run_id
    assert (again.run.attempts, again.lease.epoch, again.run.lease_owner) == (1, 2, "w2")
    assert again.run.started_at == claimed.run.started_at  # the first start is kept


async def test_a_lost_worker_s_run_is_taken_over_and_its_lease_fenced(runs: RunStore) -> None:
    run = await runs.submit(submission(max_attempts=2))
    # A lease that has expired already: its worker stopped renewing.
    lost = await runs.claim("w1", lease_seconds=-1)
    assert lost is not None
    taken = await runs.claim("w2", lease_seconds=LEASE_S)
    assert taken is not None and taken.run.run_id == run.run_id
    assert (taken.lease.epoch, taken.run.attempts, taken.run.lease_owner) == (2, 2, "w2")
    with pytest.raises(LeaseLostError, match="was claimed again: it runs at lease epoch 2"):
        await runs.renew(lost.lease, lease_seconds=LEASE_S)
    with pytest.raises(LeaseLostError):
        await runs.finish(lost.lease, RunOutcome("completed", result="stale"))
    done = await runs.finish(taken.lease, RunOutcome("completed", result="fresh"))
    assert done.result == "fresh"


async def test_a_lost_run_with_no_attempt_left_fails_saying_so(runs: RunStore) -> None:
    run = await runs.submit(submission(max_attempts=1))
    assert await runs.claim("w1", lease_seconds=-1) is not None
    assert await runs.claim("w2", lease_seconds=LEASE_S) is None
    failed = await runs.get(run.run_id)
    assert (failed.status, failed.error) == (
        "failed",
        "its worker was lost once (max_attempts 1)",
    )


async def test_a_lost_run_whose_cancel_was_asked_is_cancelled(runs: RunStore) -> None:
    run = await runs.submit(submission(max_attempts=3))
    assert await runs.claim("w1", lease_seconds=-1) is not None
    await runs.cancel(run.run_id)
    assert await runs.claim("w2", lease_seconds=LEASE_S) is None
    assert (await runs.get(run.run_id)).status == "cancelled"


async def test_a_run_past_its_deadline_fails_instead_of_running(runs: RunStore) -> None:
    deadline = utc_now() + timedelta(milliseconds=200)
    run = await runs.submit(submission(deadline=deadline))
    later = await runs.submit(submission(message="no deadline"))
    while utc_now() <= deadline:
        await asyncio.sleep(0.05)
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None and claimed.run.run_id == later.run_id
    failed = await runs.get(run.run_id)
    assert (failed.status, failed.attempts) == ("failed", 0)
    assert failed.error is not None and "deadline passed" in failed.error


async def test_wait_returns_the_ended_run(runs: RunStore) -> None:
    run = await runs.submit(submission())
    with pytest.raises(TimeoutError):
        await runs.wait(run.run_id, timeout=0.1)
    waiting = asyncio.create_task(runs.wait(run.run_id))
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    await runs.finish(claimed.lease, RunOutcome("completed", result="done"))
    ended = await waiting
    assert (ended.status, ended.result) == ("completed", "done")
    assert await runs.wait(run.run_id) == ended


async def test_concurrent_claimers_never_share_a_run(runs: RunStore) -> None:
    submitted = {(await runs.submit(submission(message=f"m{n}"))).run_id for n in range(30)}
    claimed: list[str] = []

    async def claimer(worker: str) -> None:
        while (got := await runs.claim(worker, lease_seconds=LEASE_S)) is not None:
            claimed.append(got.run.run_id)
            await runs.finish(got.lease, RunOutcome("completed", result=worker))

    await asyncio.gather(*(claimer(f"w{n}") for n in range(8)))
    assert sorted(claimed) == sorted(submitted)
    assert {run.status for run in await runs.list(limit=100)} == {"completed"}


async def test_a_run_s_webhook_is_told_of_its_end_in_the_outbox(
    stores: Stores, runs: RunStore
) -> None:
    run = await runs.submit(submission(webhook_url="https://example.com/hook"))
    hooks = await stores.webhooks.list(run_id=run.run_id)
    assert [(hook.url, hook.run_id) for hook in hooks] == [("https://example.com/hook", run.run_id)]
    claimed = await runs.claim("w1", lease_seconds=LEASE_S)
    assert claimed is not None
    await runs.finish(claimed.lease, RunOutcome("retry", error="503"))
    assert await stores.webhooks.deliveries(run_id=run.run_id) == []  # not ended yet
    again = await runs.claim("w1", lease_seconds=LEASE_S)
    assert again is not None
    await runs.finish(again.lease, RunOutcome("completed", result="hi"))
    deliveries = await stores.webhooks.deliveries(run_id=run.run_id)
    assert [(d.event, d.url, d.status) for d in deliveries] == [
        ("run.completed", "https://example.com/hook", "pending")
    ]
    assert deliveries[0].payload["run"]["result"] == "hi"

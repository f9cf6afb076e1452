"""On PostgreSQL the queue runs on the database server's clock, not the workers': a worker whose
clock is an hour ahead or behind cannot take a live lease, cannot keep an expired one, and
sees the same `not_before`, backoff and deadlines as everyone else. The test process plays
such workers by moving its own clock (every `utc_now` of mcp_agent.db); the database is real.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from mcp_agent.db.definitions.specs import AGENT_SPEC
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.models import types
from mcp_agent.db.models.runs import RunRow, WebhookDeliveryRow
from mcp_agent.db.runs.base import RunOutcome, RunSubmission
from mcp_agent.db.runs.execution import _deadline_by_this_clock
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.webhooks.delivery import WebhookDeliverer
from mcp_agent.db.webhooks.outbox import enqueue_run_end
from mcp_agent.db.webhooks.sql import SqlWebhookStore
from mcp_agent.db.webhooks.validation import DEFAULT_SECRET_ENV
from tests.support.processes import GUARD_S
from tests.support.webhooks import Receiver, ended_run, insert_run_row

pytestmark = pytest.mark.one_backend("postgresql")

_REAL_UTC_NOW = types.utc_now


@contextmanager
def clock_off(offset: timedelta) -> Iterator[None]:
    """This process's clock `offset` from the database's: every `utc_now` of mcp_agent.db,
    wherever a module imported it."""
    moved: Callable[[], datetime] = lambda: _REAL_UTC_NOW() + offset  # noqa: E731
    patched = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("mcp_agent.db") and getattr(module, "utc_now", None) is _REAL_UTC_NOW
    ]
    for module in patched:
        module.utc_now = moved  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.utc_now = _REAL_UTC_NOW  # type: ignore[attr-defined]


AHEAD = timedelta(hours=1)
BEHIND = timedelta(hours=-1)


@pytest.fixture
async def runs(runtime: DatabaseRuntime) -> SqlRunStore:
    await SqlDefinitionStore(runtime).put(
        [AGENT_SPEC.validate_python({"name": "echo", "type": "agent", "model": "passthrough"})],
        source="test",
    )
    return SqlRunStore(runtime, retry_backoff_s=60)


async def database_now(runtime: DatabaseRuntime) -> datetime:
    async with runtime.engine.connect() as connection:
        now = await connection.scalar(select(func.now()))
    assert now is not None
    return now


async def lease_expires_at(runtime: DatabaseRuntime, run_id: str) -> datetime:
    async with runtime.sessions() as session:
        row = await session.get(RunRow, run_id)
        assert row is not None and row.lease_expires_at is not None
        return row.lease_expires_at


async def until_the_database_passes(runtime: DatabaseRuntime, moment: datetime) -> None:
    """Wait (under the suite's guard) until the database's clock is past `moment`."""
    since = time.monotonic()
    while await database_now(runtime) <= moment:
        assert time.monotonic() - since < GUARD_S, "the database's clock does not move?"
        await asyncio.sleep(0.05)


async def test_a_worker_ahead_cannot_take_a_live_lease(
    runtime: DatabaseRuntime, runs: SqlRunStore
) -> None:
    run = await runs.submit(RunSubmission(agent_name="echo", message="hi"))
    first = await runs.claim("right:1", lease_seconds=30)
    assert first is not None and first.run.run_id == run.run_id
    with clock_off(AHEAD):
        # By its clock the lease ended half an hour ago; by the database's it is live.
        assert await runs.claim("ahead:2", lease_seconds=30) is None
    assert await runs.renew(first.lease, lease_seconds=30) is False
    assert (await runs.get(run.run_id)).lease_owner == "right:1"


async def test_a_worker_ahead_cannot_keep_an_expired_lease(
    runtime: DatabaseRuntime, runs: SqlRunStore
) -> None:
    run = await runs.submit(RunSubmission(agent_name="echo", message="hi"))
    with clock_off(AHEAD):
        claimed = await runs.claim("ahead:1", lease_seconds=0.5)
        assert claimed is not None
    # The lease ends half a second after the claim by the database's clock, not an hour on.
    expires_at = await lease_expires_at(runtime, run.run_id)
    assert claimed.lease.expires_at == expires_at
    assert expires_at - await database_now(runtime) <= timedelta(seconds=0.5)
    await until_the_database_passes(runtime, expires_at)
    with clock_off(BEHIND):
        # By this worker's clock the lease has an hour to go; by the database's it ended.
        taken = await runs.claim("behind:2", lease_seconds=30)
    assert taken is not None and taken.run.run_id == run.run_id
    assert (taken.lease.epoch, taken.run.attempts) == (2, 2)
    with clock_off(AHEAD), pytest.raises(LeaseLostError, match="lease epoch 2 now"):
        await runs.renew(claimed.lease, lease_seconds=30)
    with clock_off(AHEAD), pytest.raises(LeaseLostError):
        await runs.finish(claimed.lease, RunOutcome("completed", result="late"))
    assert (await runs.get(run.run_id)).lease_owner == "behind:2"


async def test_backoff_and_deadlines_are_the_databases(
    runtime: DatabaseRuntime, runs: SqlRunStore
) -> None:
    # A deadline half an hour away by the database is in the future, whatever the submitter's
    # clock says; a worker an hour ahead still claims the run (its deadline has not passed).
    deadline = await database_now(runtime) + timedelta(minutes=30)
    with clock_off(AHEAD):
        run = await runs.submit(RunSubmission(agent_name="echo", message="hi", deadline=deadline))
        claimed = await runs.claim("ahead:1", lease_seconds=30)
    assert claimed is not None and claimed.run.run_id == run.run_id
    assert claimed.run.not_before <= await database_now(runtime)
    # A retry 60 s away by the database's clock, written by a worker an hour behind: not
    # claimable at once by anyone.
    with clock_off(BEHIND):
        retried = await runs.finish(claimed.lease, RunOutcome("retry", error="flaky"))
    assert retried.status == "queued"
    assert retried.not_before - await database_now(runtime) > timedelta(seconds=50)
    assert await runs.claim("right:2", lease_seconds=30) is None
    # Its deadline passed by the database's clock: failed at the next claim, by any worker.
    async with runtime.engine.begin() as connection:
        await connection.execute(
            update(RunRow)
            .where(RunRow.run_id == run.run_id)
            .values(deadline=func.now(), not_before=func.now())
        )
    with clock_off(BEHIND):
        assert await runs.claim("behind:3", lease_seconds=30) is None
    ended = await runs.get(run.run_id)
    assert (ended.status, ended.error) == ("failed", "deadline passed before the run could end")


async def test_webhook_deliveries_are_due_and_leased_by_the_databases_clock(
    runtime: DatabaseRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEFAULT_SECRET_ENV, "whsec-clock-test")
    receiver = Receiver().start()
    try:
        await SqlWebhookStore(runtime).add(receiver.url)
        ended = ended_run()
        async with runtime.engine.begin() as connection:
            await insert_run_row(connection, ended)
            await enqueue_run_end(connection, ended)
            await connection.execute(
                update(WebhookDeliveryRow).values(
                    next_attempt_at=func.now() + timedelta(minutes=10)
                )
            )
        with clock_off(AHEAD):
            # Due in ten minutes by the database: a deliverer an hour ahead leaves it.
            assert await WebhookDeliverer(runtime, "ahead:1").deliver_due() == 0
        async with runtime.engine.begin() as connection:
            await connection.execute(update(WebhookDeliveryRow).values(next_attempt_at=func.now()))
        # A deliverer an hour ahead took it and died: its lease, by the database's clock,
        # lasts the deliverer's lease length, not an hour more.
        dead = WebhookDeliverer(runtime, "dead:1")
        with clock_off(AHEAD):
            assert len(await dead._claim(None)) == 1  # noqa: SLF001 - a claim, then no POST
        async with runtime.engine.connect() as connection:
            leased_for = await connection.scalar(
                select(WebhookDeliveryRow.lease_expires_at - func.now())
            )
        assert timedelta(0) < leased_for <= timedelta(seconds=dead.lease_s)
        with clock_off(AHEAD):
            # Leased by the database's clock: a deliverer whose clock is past it leaves it.
            assert await WebhookDeliverer(runtime, "ahead:2").deliver_due() == 0
        async with runtime.engine.begin() as connection:
            await connection.execute(update(WebhookDeliveryRow).values(lease_expires_at=func.now()))
        with clock_off(BEHIND):
            # Due and its lease ended by the database's clock, an hour ahead of this
            # deliverer's: it is delivered.
            assert await WebhookDeliverer(runtime, "behind:3").deliver_due() == 1
        assert len(receiver.accepted) == 1
    finally:
        receiver.stop()


async def test_a_running_run_s_deadline_is_read_by_the_database_s_clock(
    runtime: DatabaseRuntime,
) -> None:
    """A worker's call boundaries read its own clock: the deadline they compare with is moved
    by that clock's offset from the database's, so it passes when the database says."""
    deadline = await database_now(runtime) + timedelta(minutes=30)
    with clock_off(AHEAD):
        here = await _deadline_by_this_clock(runtime, deadline)
        assert here is not None and not here <= types.utc_now()
    assert abs(here - (deadline + AHEAD)) < timedelta(seconds=5)
    with clock_off(BEHIND):
        here = await _deadline_by_this_clock(runtime, deadline)
    assert here is not None and abs(here - (deadline + BEHIND)) < timedelta(seconds=5)

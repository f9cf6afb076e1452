"""A minimal worker for the durable-execution tests: claims runs with plain SQL, holds the
lease by heartbeat, and executes each with `execute_claimed_run` (the function the real
`fast-agent-db worker` calls). tests/test_run_recovery.py uses the real worker, and this one
only where the real one cannot play the case (each test says why): two workers on SQLite at
once, a claim that hands the run its cancel at once.

    python -m tests.support.durable_worker DATABASE_URL [--lease-s S] [--runs N]

stdout: `claimed RUN_ID epoch N`, then `outcome RUN_ID STATUS`; a refused write ends the
process with `lease lost: ...` on stderr and exit code 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import ClaimedRun, Lease, Run, RunControl, RunOutcome
from mcp_agent.db.runs.execution import execute_claimed_run
from mcp_agent.db.runtime import DatabaseRuntime

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _run(row: RunRow) -> Run:
    return Run(
        **{name: getattr(row, name) for name in Run.__dataclass_fields__}  # type: ignore[arg-type]
    )


async def submit(
    runtime: DatabaseRuntime, agent: str, message: str, session_id: str, **values: object
) -> str:
    """Queue a run (as the run store's submit does), its session made if new; its id."""
    await SqlConversationStore(runtime).ensure_session(session_id, app_name="tests")
    run_id = str(uuid.uuid4())
    async with runtime.sessions.begin() as session:
        session.add(
            RunRow(
                run_id=run_id,
                agent_name=agent,
                session_id=session_id,
                message=message,
                status="queued",
                attempts=0,
                max_attempts=values.pop("max_attempts", 3),
                caller="tests",
                not_before=utc_now(),
                lease_epoch=0,
                **values,
            )
        )
    return run_id


async def claim(runtime: DatabaseRuntime, lease_s: float) -> ClaimedRun | None:
    now = utc_now()
    claimable = or_(
        (RunRow.status == "queued") & (RunRow.not_before <= now),
        (RunRow.status == "running") & (RunRow.lease_expires_at < now),
    )
    async with runtime.sessions.begin() as session:
        query = select(RunRow).where(claimable).order_by(RunRow.created_at).limit(1)
        if runtime.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = (await session.scalars(query)).first()
        if row is None:
            return None
        expires = now + timedelta(seconds=lease_s)
        row.status = "running"
        row.lease_epoch += 1
        row.attempts += 1
        row.lease_owner = WORKER_ID
        row.lease_expires_at = expires
        row.started_at = row.started_at or now
        await session.flush()
        run = _run(row)
    return ClaimedRun(run, Lease(run.run_id, WORKER_ID, run.lease_epoch, expires))


async def heartbeat(runtime: DatabaseRuntime, control: RunControl, lease_s: float) -> None:
    lease = control.lease
    while True:
        await asyncio.sleep(lease_s / 3)
        async with runtime.sessions.begin() as session:
            renewed = await session.execute(
                update(RunRow)
                .where(
                    RunRow.run_id == lease.run_id,
                    RunRow.lease_epoch == lease.epoch,
                    RunRow.status == "running",
                )
                .values(lease_expires_at=utc_now() + timedelta(seconds=lease_s))
                .returning(RunRow.cancel_requested_at)
            )
            found = renewed.first()
        if found is None:
            control.lease_lost = True
            return
        control.cancel_requested = found.cancel_requested_at is not None


async def finish(runtime: DatabaseRuntime, claimed: ClaimedRun, outcome: RunOutcome) -> None:
    run, now = claimed.run, utc_now()
    if outcome.status == "retry" and run.attempts < run.max_attempts:
        values: dict[str, object] = {"status": "queued", "not_before": now, "error": outcome.error}
    else:
        status = "failed" if outcome.status == "retry" else outcome.status
        values = {
            "status": status,
            "result": outcome.result,
            "error": outcome.error,
            "finished_at": now,
        }
    async with runtime.sessions.begin() as session:
        await session.execute(
            update(RunRow)
            .where(
                RunRow.run_id == run.run_id,
                RunRow.lease_epoch == claimed.lease.epoch,
                RunRow.status == "running",
            )
            .values(lease_owner=None, lease_expires_at=None, **values)
        )


async def work(database_url: str, lease_s: float, runs: int) -> int:
    async with await DatabaseRuntime.open(database_url) as runtime:
        done = 0
        while done < runs:
            claimed = await claim(runtime, lease_s)
            if claimed is None:
                await asyncio.sleep(0.2)
                continue
            print(f"claimed {claimed.run.run_id} epoch {claimed.lease.epoch}", flush=True)
            control = RunControl(
                lease=claimed.lease,
                cancel_requested=claimed.run.cancel_requested_at is not None,
            )
            beating = asyncio.create_task(heartbeat(runtime, control, lease_s))
            try:
                outcome = await execute_claimed_run(runtime, claimed, control)
            except LeaseLostError as lost:
                print(f"lease lost: {lost}", file=sys.stderr, flush=True)
                return 3
            finally:
                beating.cancel()
            await finish(runtime, claimed, outcome)
            ended = f"outcome {claimed.run.run_id} {outcome.status} {outcome.error or ''}"
            print(ended, flush=True)
            done += 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--lease-s", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    sys.exit(asyncio.run(work(args.database_url, args.lease_s, args.runs)))


if __name__ == "__main__":
    main()

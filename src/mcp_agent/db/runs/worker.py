"""One worker process: claims a run, executes it, ends it, and again; one run at a time.

Upstream keeps a run's logging and application context process-wide, so a process runs one
run at a time; `fast-agent-db worker --concurrency N` (runs/supervisor.py) runs N of these.

While a run executes, a heartbeat renews its lease every third of the lease and tells the
run (through its `RunControl`, read at each call boundary) when a cancel was asked for or the
lease was lost. Idle, the worker waits for a NOTIFY on `fa_runs` (PostgreSQL) or the poll
interval, whichever comes first.

Stopping: the first SIGTERM (or SIGINT) stops claiming; the run in progress may finish within
the grace period, after which it is stopped and handed back (queued again at once, the
attempt not counted). A second signal hands it back at once. A worker whose parent
(the supervisor) is gone stops as if told to.

    python -m mcp_agent.db.runs.worker --lease S --grace S   (the database from
    FAST_AGENT_DATABASE_URL, never from the command line, where `ps` would show a password)

Its lines on stderr: `worker ID: claimed run R (attempt A of M, lease epoch E)`, `worker ID:
run R OUTCOME ...`, `worker ID: lease lost ...`. Exit code 0 when it stopped as asked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.models.runs import WorkerRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import ClaimedRun, RunControl, RunOutcome, RunStore
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runs.wake import POLL_INTERVAL_S, RUNS_CHANNEL, first_of, listen
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.workers import this_worker

#: Defaults of `fast-agent-db worker`.
DEFAULT_LEASE_S = 30.0
DEFAULT_GRACE_S = 30.0

_workers = WorkerRow.__table__


def report(worker_id: str, message: str) -> None:
    print(f"worker {worker_id}: {message}", file=sys.stderr, flush=True)


def _describe(error: BaseException) -> str:
    from mcp_agent.db.runs.agent_runs import describe

    return describe(error)


# ---------------------------------------------------------------------------------------------
# fa_workers


async def register_worker(runtime: DatabaseRuntime, worker_id: str, concurrency: int) -> None:
    """Record this worker in fa_workers (again, if an earlier process had its id)."""
    now = utc_now()
    values = {
        "worker_id": worker_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "concurrency": concurrency,
        "started_at": now,
        "heartbeat_at": now,
        "stopped_at": None,
    }
    insert = postgres_insert if runtime.dialect == "postgresql" else sqlite_insert
    statement = insert(_workers).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[_workers.c.worker_id],
        set_={name: value for name, value in values.items() if name != "worker_id"},
    )
    async with runtime.engine.begin() as connection:
        await connection.execute(statement)


async def worker_seen(runtime: DatabaseRuntime, worker_id: str, *, stopped: bool = False) -> None:
    now = utc_now()
    values: dict[str, datetime] = {"heartbeat_at": now}
    if stopped:
        values["stopped_at"] = now
    async with runtime.engine.begin() as connection:
        await connection.execute(
            update(_workers).where(_workers.c.worker_id == worker_id).values(**values)
        )


# ---------------------------------------------------------------------------------------------
# The loop


class RunWorker:
    """Claims and executes runs, one at a time, until `stop` is set.

    Args:
        runtime: the database.
        worker_id: who holds the leases (`host:pid`).
        lease_s: a lease's length; renewed every third of it.
        grace_s: how long a run in progress may go on once `stop` is set.
        poll_s: how often an idle worker looks for runs without being told.
    """

    def __init__(
        self,
        runtime: DatabaseRuntime,
        *,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        grace_s: float = DEFAULT_GRACE_S,
        poll_s: float = POLL_INTERVAL_S,
        store: RunStore | None = None,
    ) -> None:
        self._runtime = runtime
        self.worker_id = worker_id or this_worker()
        self.lease_s = lease_s
        self.grace_s = grace_s
        self.poll_s = poll_s
        self._store = store or SqlRunStore(runtime)
        #: Set to stop claiming; the run in progress may finish within the grace period.
        self.stop = asyncio.Event()
        #: Set to hand the run in progress back at once.
        self.hand_back = asyncio.Event()
        self._wake = asyncio.Event()
        self.runs_done = 0

    def request_stop(self) -> None:
        """A first call stops claiming (and starts the grace period); a second hands back."""
        if self.stop.is_set():
            self.hand_back.set()
            return
        self.stop.set()
        asyncio.get_running_loop().call_later(self.grace_s, self.hand_back.set)

    async def run(self) -> None:
        await register_worker(self._runtime, self.worker_id, 1)
        report(self.worker_id, f"waiting for runs (lease {self.lease_s:g} s)")
        listener = None
        if self._runtime.dialect == "postgresql":
            listener = asyncio.create_task(
                listen(
                    self._runtime,
                    RUNS_CHANNEL,
                    lambda _payload: self._wake.set(),
                    application_name=f"fast-agent-db worker {self.worker_id}",
                )
            )
        failing = False
        try:
            while not self.stop.is_set():
                self._wake.clear()
                try:
                    claimed = await self._store.claim(self.worker_id, lease_seconds=self.lease_s)
                except Exception as error:  # noqa: BLE001 - the database is away: retry
                    if not failing:
                        report(self.worker_id, f"cannot claim now ({_describe(error)}); retrying")
                    failing = True
                    await first_of(self.stop, timeout_s=self.poll_s)
                    continue
                if failing:
                    report(self.worker_id, "claiming again")
                failing = False
                if claimed is None:
                    await worker_seen(self._runtime, self.worker_id)
                    await first_of(self.stop, self._wake, timeout_s=self.poll_s)
                    continue
                await self.execute(claimed)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            try:
                await worker_seen(self._runtime, self.worker_id, stopped=True)
            except Exception as error:  # noqa: BLE001 - stopping anyway
                report(self.worker_id, f"could not record its stop: {_describe(error)}")
        report(self.worker_id, f"stopped after {self.runs_done} runs")

    async def execute(self, claimed: ClaimedRun) -> None:
        """One attempt at `claimed`, ended in the store unless its lease was lost."""
        from mcp_agent.db.runs.execution import execute_claimed_run

        run, lease = claimed.run, claimed.lease
        report(
            self.worker_id,
            f"claimed run {run.run_id} (attempt {run.attempts} of {run.max_attempts}, "
            f"lease epoch {lease.epoch})",
        )
        control = RunControl(lease=lease)
        heartbeat = asyncio.create_task(self._heartbeat(control))
        attempt = asyncio.create_task(execute_claimed_run(self._runtime, claimed, control))
        handing_back = asyncio.create_task(self.hand_back.wait())
        try:
            await asyncio.wait({attempt, handing_back}, return_when=asyncio.FIRST_COMPLETED)
            if not attempt.done():
                control.stop_reason = "the worker is shutting down"
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
                outcome = RunOutcome("handed_back", error="its worker shut down")
            else:
                try:
                    outcome = attempt.result()
                except LeaseLostError as lost:
                    report(self.worker_id, f"lease lost, the run is not ended here: {lost}")
                    return
                except asyncio.CancelledError:
                    outcome = RunOutcome("handed_back", error="its attempt was cancelled")
                except Exception as error:  # noqa: BLE001 - the worker's fault, not the run's
                    outcome = RunOutcome(
                        "retry", error=f"the worker failed running it: {_describe(error)}"
                    )
        finally:
            handing_back.cancel()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, handing_back, return_exceptions=True)
        try:
            ended = await self._store.finish(lease, outcome)
        except LeaseLostError as lost:
            report(self.worker_id, f"lease lost, the run is not ended here: {lost}")
            return
        self.runs_done += 1
        detail = f": {ended.error}" if ended.error and ended.status != "completed" else ""
        report(self.worker_id, f"run {run.run_id} {outcome.status} -> {ended.status}{detail}")

    async def _heartbeat(self, control: RunControl) -> None:
        """Renew the lease every third of it; tell the run of a cancel or a lost lease."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                cancel = await self._store.renew(control.lease, lease_seconds=self.lease_s)
            except LeaseLostError as lost:
                control.lease_lost = True
                report(self.worker_id, f"lease lost: {lost}")
                return
            except Exception as error:  # noqa: BLE001 - try again; the fence guards writes
                report(self.worker_id, f"cannot renew the lease now: {_describe(error)}")
                continue
            if cancel and not control.cancel_requested:
                report(
                    self.worker_id,
                    f"run {control.lease.run_id}: cancel asked; it stops at its next call boundary",
                )
            control.cancel_requested = cancel
            try:
                await worker_seen(self._runtime, self.worker_id)
            except Exception:  # noqa: BLE001, S110 - only for people looking at fa_workers
                pass


async def _watch_parent(worker: RunWorker, parent_pid: int) -> None:
    """Stop as if told to once the supervisor is gone (its children are re-parented)."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    report(worker.worker_id, "its supervisor is gone: stopping")
    worker.request_stop()


async def _main(lease_s: float, grace_s: float, poll_s: float) -> int:
    async with await DatabaseRuntime.open() as runtime:
        worker = RunWorker(runtime, lease_s=lease_s, grace_s=grace_s, poll_s=poll_s)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        watcher = asyncio.create_task(_watch_parent(worker, os.getppid()))
        try:
            await worker.run()
        finally:
            watcher.cancel()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lease", type=float, default=DEFAULT_LEASE_S)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    parser.add_argument("--poll", type=float, default=POLL_INTERVAL_S)
    args = parser.parse_args()
    try:
        code = asyncio.run(_main(args.lease, args.grace, args.poll))
    except Exception as error:  # noqa: BLE001 - said once, for the supervisor's log
        print(f"worker {this_worker()}: cannot run: {_describe(error)}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()

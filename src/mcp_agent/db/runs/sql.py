"""The run queue in fa_runs, on PostgreSQL and SQLite.

Every operation is one short transaction on its own connection. Those that change a run
hold its row first: on PostgreSQL by `FOR UPDATE` (a claim with `SKIP LOCKED`, so concurrent
claimers take different runs and never wait for each other); on SQLite by `BEGIN IMMEDIATE`,
which takes the database's one write lock before the first read, so a read and the write
that depends on it cannot be split by another writer.

Whose clock: on PostgreSQL every time the queue compares or computes (`not_before`, lease
expiry, the backoff of a retry, a deadline's passing) is the server's, `now()`, so workers on
several machines need no synchronised clocks (mcp_agent.db.clock). SQLite is one machine: its
times are this process's clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.clock import database_now, now_column
from mcp_agent.db.definitions.base import DefinitionStore
from mcp_agent.db.errors import InputError, RunEndedError, UnknownValueError
from mcp_agent.db.lookups import complete_id
from mcp_agent.db.models.conversations import SessionRow
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import (
    ENDED_STATUSES,
    ClaimedRun,
    Lease,
    Run,
    RunOutcome,
    RunStatus,
    RunSubmission,
)
from mcp_agent.db.runs.journal import Fence, lease_lost
from mcp_agent.db.runs.submission import (
    DEADLINE_PASSED,
    checked_submission,
    configured_retry_backoff_s,
    duplicate_run,
    ended_error,
    lost_worker_error,
    retry_delay,
    unknown_agent,
)
from mcp_agent.db.runs.wake import (
    NOTIFY_RUN_END_SQL,
    NOTIFY_RUNS_SQL,
    POLL_INTERVAL_S,
    RUN_ENDS_CHANNEL,
    first_of,
    listen,
)
from mcp_agent.db.runtime import DatabaseRuntime

_runs = RunRow.__table__
_sessions = SessionRow.__table__
_RUN_FIELDS = tuple(field.name for field in fields(Run))
#: The app name of a session made for a run (what `fast-agent-db run` names its app).
RUN_SESSION_APP = "fast-agent-db"


def run_from_row(row: Any) -> Run:
    return Run(**{name: getattr(row, name) for name in _RUN_FIELDS})


def check_limit(limit: int) -> int:
    if limit < 1:
        raise InputError("limit", f"{limit} is out of range: at least 1")
    return limit


def next_state(run: Run, outcome: RunOutcome, now: datetime, backoff_s: float) -> dict[str, Any]:
    """The columns `finish` writes for `outcome` of the attempt `run` holds (both backends)."""
    ended: dict[str, Any] = {"finished_at": now, "lease_expires_at": None}
    if outcome.status == "completed":
        return {**ended, "status": "completed", "result": outcome.result, "error": None}
    if outcome.status == "failed":
        return {**ended, "status": "failed", "error": outcome.error or "failed"}
    if outcome.status == "cancelled":
        return {**ended, "status": "cancelled", "error": outcome.error or "cancelled"}
    requeued: dict[str, Any] = {"status": "queued", "lease_owner": None, "lease_expires_at": None}
    if outcome.status == "handed_back":
        return {**requeued, "not_before": now, "attempts": max(run.attempts - 1, 0)}
    # retry
    reason = outcome.error or "the attempt failed"
    if run.attempts >= run.max_attempts:
        return {
            **ended,
            "status": "failed",
            "error": f"{reason} (attempt {run.attempts} of {run.max_attempts}; none left)",
        }
    return {**requeued, "not_before": now + retry_delay(run.attempts, backoff_s), "error": reason}


def instead_of_claim(run: Run, now: datetime) -> dict[str, Any] | None:
    """The end of a claimable run that must not run again, else None (both backends)."""
    ended: dict[str, Any] = {"finished_at": now, "lease_expires_at": None}
    if run.deadline is not None and run.deadline <= now:
        return {**ended, "status": "failed", "error": DEADLINE_PASSED}
    if run.status != "running":
        return None
    # Its lease expired: its worker was lost.
    if run.cancel_requested_at is not None:
        return {
            **ended,
            "status": "cancelled",
            "error": "cancelled (its worker was lost before the run stopped)",
        }
    if run.attempts >= run.max_attempts:
        return {**ended, "status": "failed", "error": lost_worker_error(run)}
    return None


class SqlRunStore:
    def __init__(
        self,
        runtime: DatabaseRuntime,
        *,
        definitions: DefinitionStore | None = None,
        retry_backoff_s: float | None = None,
    ) -> None:
        self._runtime = runtime
        if definitions is None:
            from mcp_agent.db.definitions.sql import SqlDefinitionStore

            definitions = SqlDefinitionStore(runtime)
        self._definitions = definitions
        self._backoff_s = (
            configured_retry_backoff_s() if retry_backoff_s is None else retry_backoff_s
        )
        self._postgres = runtime.dialect == "postgresql"

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that may write what it read: on SQLite it holds the write lock from
        its start (BEGIN IMMEDIATE); on PostgreSQL reads lock the rows they need."""
        if self._postgres:
            async with self._runtime.engine.begin() as connection:
                yield connection
            return
        async with self._runtime.engine.connect() as connection:
            # The driver begins nothing for a statement that is not DML, so this BEGIN is the
            # transaction's, and the commit below ends it.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()

    # -----------------------------------------------------------------------------------------
    # Submitting and reading

    async def submit(self, submission: RunSubmission) -> Run:
        now: datetime | None = None
        if submission.deadline is not None and self._postgres:
            # A deadline is an absolute time: "in the future" by the server's clock.
            async with self._runtime.engine.connect() as connection:
                now = await database_now(connection, self._postgres)
        submission = checked_submission(submission, now=now)
        name = submission.agent_name
        if name not in await self._definitions.current([name]):
            raise unknown_agent(name, list(await self._definitions.current()))
        try:
            return await self._insert(submission)
        except IntegrityError:
            # Another submit with the same key committed between our check and our insert.
            existing = await self._by_key(submission)
            if existing is None:
                raise
            raise duplicate_run(existing) from None

    async def _insert(self, submission: RunSubmission) -> Run:
        now = now_column(self._postgres) if self._postgres else utc_now()
        run_id = str(uuid.uuid4())
        session_id = submission.session_id or str(uuid.uuid4())
        values: dict[str, Any] = {
            "run_id": run_id,
            "agent_name": submission.agent_name,
            "session_id": session_id,
            "message": submission.message,
            "model": submission.model,
            "status": "queued",
            "attempts": 0,
            "max_attempts": submission.max_attempts,
            "caller": submission.caller,
            "idempotency_key": submission.idempotency_key,
            "not_before": now,
            "deadline": submission.deadline,
            "lease_epoch": 0,
            "created_at": now,
            "updated_at": now,
        }
        async with self._runtime.engine.begin() as connection:
            if submission.idempotency_key is not None:
                existing = await self._by_key(submission, connection)
                if existing is not None:
                    raise duplicate_run(existing)
            new_session = (postgres_insert if self._postgres else sqlite_insert)(_sessions)
            await connection.execute(
                new_session.values(
                    session_id=session_id, app_name=RUN_SESSION_APP, created_at=now, updated_at=now
                ).on_conflict_do_nothing()
            )
            await connection.execute(insert(_runs).values(values))
            if submission.webhook_url is not None:
                from mcp_agent.db.webhooks.outbox import insert_run_webhook

                await insert_run_webhook(
                    connection,
                    run_id=run_id,
                    url=submission.webhook_url,
                    secret_ref=submission.webhook_secret_ref,
                )
            if self._postgres:
                await connection.execute(text(NOTIFY_RUNS_SQL))
            row = (await connection.execute(select(_runs).where(_runs.c.run_id == run_id))).one()
        return run_from_row(row)

    async def _by_key(
        self, submission: RunSubmission, connection: AsyncConnection | None = None
    ) -> Run | None:
        query = select(_runs).where(
            _runs.c.caller == submission.caller,
            _runs.c.idempotency_key == submission.idempotency_key,
        )
        if connection is not None:
            row = (await connection.execute(query)).first()
        else:
            async with self._runtime.engine.connect() as own:
                row = (await own.execute(query)).first()
        return None if row is None else run_from_row(row)

    async def get(self, run_id: str) -> Run:
        run_id = await complete_id(self._runtime, RunRow.run_id, run_id, what="run")
        async with self._runtime.engine.connect() as connection:
            row = (await connection.execute(select(_runs).where(_runs.c.run_id == run_id))).first()
        if row is None:  # deleted meanwhile
            raise UnknownValueError(f"no run {run_id!r}")
        return run_from_row(row)

    async def list(
        self,
        *,
        status: RunStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        query = select(_runs).order_by(_runs.c.created_at.desc(), _runs.c.run_id.desc())
        if status is not None:
            query = query.where(_runs.c.status == status)
        if agent_name is not None:
            query = query.where(_runs.c.agent_name == agent_name)
        if session_id is not None:
            query = query.where(_runs.c.session_id == session_id)
        async with self._runtime.engine.connect() as connection:
            rows = await connection.execute(query.limit(check_limit(limit)))
            return [run_from_row(row) for row in rows]

    # -----------------------------------------------------------------------------------------
    # Changing a run

    async def _locked(
        self, connection: AsyncConnection, run_id: str
    ) -> tuple[Run | None, datetime]:
        """The run, its row held for this transaction, and the queue's time now."""
        if not self._postgres:
            row = (await connection.execute(select(_runs).where(_runs.c.run_id == run_id))).first()
            return (None if row is None else run_from_row(row)), utc_now()
        query = (
            select(_runs, now_column(self._postgres).label("database_now"))
            .where(_runs.c.run_id == run_id)
            .with_for_update(of=_runs)
        )
        row = (await connection.execute(query)).first()
        if row is None:
            return None, await database_now(connection, self._postgres)
        return run_from_row(row), row.database_now

    async def _set(self, connection: AsyncConnection, run: Run, values: dict[str, Any]) -> Run:
        """Write `values` on the locked `run`; the run as now stored. An end tells its webhooks
        (the outbox, in this transaction) and, on PostgreSQL, `runs wait`."""
        await connection.execute(
            update(_runs)
            .where(_runs.c.run_id == run.run_id)
            .values(
                **values, updated_at=now_column(self._postgres) if self._postgres else utc_now()
            )
        )
        changed = replace(run, **values)
        if changed.status in ENDED_STATUSES:
            from mcp_agent.db.webhooks.outbox import enqueue_run_end

            await enqueue_run_end(connection, changed)
            if self._postgres:
                await connection.execute(text(NOTIFY_RUN_END_SQL), {"run_id": run.run_id})
        elif changed.status == "queued" and self._postgres:
            await connection.execute(text(NOTIFY_RUNS_SQL))
        return changed

    async def cancel(self, run_id: str) -> Run:
        run_id = await complete_id(self._runtime, RunRow.run_id, run_id, what="run")
        async with self._writing() as connection:
            run, now = await self._locked(connection, run_id)
            if run is None:
                raise UnknownValueError(f"no run {run_id!r}")
            if run.status in ENDED_STATUSES:
                raise RunEndedError(ended_error(run))
            if run.status == "queued":
                return await self._set(
                    connection,
                    run,
                    {
                        "status": "cancelled",
                        "error": "cancelled before it started",
                        "cancel_requested_at": now,
                        "finished_at": now,
                    },
                )
            if run.cancel_requested_at is not None:
                return run
            changed = await self._set(connection, run, {"cancel_requested_at": now})
            if self._postgres:
                # Its worker learns it at its next heartbeat; waiters may want to know too.
                await connection.execute(text(NOTIFY_RUNS_SQL))
            return changed

    async def claim(self, worker_id: str, *, lease_seconds: float) -> ClaimedRun | None:
        while True:
            async with self._writing() as connection:
                # PostgreSQL: the server's clock, in the query and for the lease it writes.
                now = now_column(self._postgres)
                query = (
                    select(_runs, now.label("database_now"))
                    .where(
                        or_(
                            and_(_runs.c.status == "queued", _runs.c.not_before <= now),
                            and_(_runs.c.status == "running", _runs.c.lease_expires_at < now),
                        )
                    )
                    .order_by(_runs.c.not_before, _runs.c.created_at)
                    .limit(1)
                )
                if self._postgres:
                    query = query.with_for_update(skip_locked=True, of=_runs)
                row = (await connection.execute(query)).first()
                if row is None:
                    return None
                run, now = run_from_row(row), row.database_now
                ended = instead_of_claim(run, now)
                if ended is not None:
                    await self._set(connection, run, ended)
                    continue  # committed: look for the next one
                expires_at = now + timedelta(seconds=lease_seconds)
                claimed = await self._set(
                    connection,
                    run,
                    {
                        "status": "running",
                        "lease_owner": worker_id,
                        "lease_epoch": run.lease_epoch + 1,
                        "lease_expires_at": expires_at,
                        "attempts": run.attempts + 1,
                        "started_at": run.started_at or now,
                    },
                )
                lease = Lease(run.run_id, worker_id, claimed.lease_epoch, expires_at)
                return ClaimedRun(run=claimed, lease=lease)

    async def _held(self, connection: AsyncConnection, lease: Lease) -> tuple[Run, datetime]:
        """The run `lease` holds, its row held, and the queue's time now; else LeaseLostError."""
        run, now = await self._locked(connection, lease.run_id)
        if run is None or (run.status, run.lease_epoch) != ("running", lease.epoch):
            fence = Fence(lease.run_id, lease.epoch)
            raise lease_lost(fence, *((run.status, run.lease_epoch) if run else (None, None)))
        return run, now

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        async with self._writing() as connection:
            run, now = await self._held(connection, lease)
            await connection.execute(
                update(_runs)
                .where(_runs.c.run_id == lease.run_id)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            return run.cancel_requested_at is not None

    async def finish(self, lease: Lease, outcome: RunOutcome) -> Run:
        async with self._writing() as connection:
            run, now = await self._held(connection, lease)
            return await self._set(connection, run, next_state(run, outcome, now, self._backoff_s))

    async def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        run = await self.get(run_id)
        if run.status in ENDED_STATUSES:
            return run
        return await asyncio.wait_for(self._wait_for_end(run.run_id), timeout)

    async def _wait_for_end(self, run_id: str) -> Run:
        told = asyncio.Event()

        def on_notify(payload: str) -> None:
            if payload in ("", run_id):  # "": (re)started listening, may have missed it
                told.set()

        listener: asyncio.Task[None] | None = None
        if self._postgres:
            listener = asyncio.create_task(
                listen(self._runtime, RUN_ENDS_CHANNEL, on_notify, application_name="runs wait")
            )
        try:
            while True:
                told.clear()
                run = await self.get(run_id)
                if run.status in ENDED_STATUSES:
                    return run
                await first_of(told, timeout_s=POLL_INTERVAL_S)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

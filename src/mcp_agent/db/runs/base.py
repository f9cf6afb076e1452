"""The domain objects of durable runs, shared by the run store, the workers and a run's
execution. ORM rows never leave the store: these do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

RunStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled"]
#: A run in one of these has ended and never changes again.
ENDED_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Run:
    """One run as stored (fa_runs)."""

    run_id: str
    agent_name: str
    session_id: str | None
    message: str
    model: str | None
    status: RunStatus
    attempts: int
    max_attempts: int
    caller: str
    idempotency_key: str | None
    not_before: datetime
    deadline: datetime | None
    lease_owner: str | None
    lease_epoch: int
    lease_expires_at: datetime | None
    cancel_requested_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's hold on a run. `epoch` is the fencing token every write of the run names."""

    run_id: str
    worker_id: str
    epoch: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run a worker has just claimed, with the lease it holds it by."""

    run: Run
    lease: Lease


@dataclass(slots=True)
class RunControl:
    """What a worker's heartbeat learns about a run while it executes, read by the run at
    each call boundary (an agent call, a provider request, a tool call)."""

    lease: Lease
    cancel_requested: bool = False
    #: Set when a renewal found the lease gone: every later write would be refused anyway.
    lease_lost: bool = False
    #: Why the worker wants the run to stop (shutting down, hands it back); None to go on.
    stop_reason: str | None = field(default=None)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How an attempt at a run ended.

    `retry`: it failed in a way another attempt may not (a provider error, a lost worker);
    queued again after a backoff while attempts remain, else failed with `error`.
    `handed_back`: the worker stopped before the run ended (graceful shutdown); queued again
    at once without counting the attempt.
    """

    status: Literal["completed", "failed", "cancelled", "retry", "handed_back"]
    result: str | None = None
    error: str | None = None


#: Who submitted a run when the caller does not say: idempotency keys are per caller.
LIBRARY_CALLER = "library"


@dataclass(frozen=True, slots=True)
class RunSubmission:
    """What `RunStore.submit` queues.

    `session_id` None: a new session is made for the run. `model`: for agents whose
    definition names no model (as `run --model`). `caller`: who submits (an API token's name,
    `cli`, `library`); `idempotency_key` is unique per caller, so a retried submit finds the
    run it made instead of queueing a second one. `webhook_url`: a webhook of this run alone,
    POSTed when it ends, signed with the secret `webhook_secret_ref` names (`env:NAME`; None:
    `env:FAST_AGENT_DB_WEBHOOK_SECRET`).
    """

    agent_name: str
    message: str
    session_id: str | None = None
    model: str | None = None
    caller: str = LIBRARY_CALLER
    idempotency_key: str | None = None
    deadline: datetime | None = None
    max_attempts: int = 3
    webhook_url: str | None = None
    webhook_secret_ref: str | None = None


class RunStore(Protocol):
    """The queue of runs (fa_runs): submitted by anyone, claimed and ended by workers.

    Every method is one transaction; a method that raises has changed nothing.
    """

    async def submit(self, submission: RunSubmission) -> Run:
        """Queue a run; without a session, a new one is made for it (in the same transaction,
        with the run's webhook if given). On PostgreSQL waiting workers are NOTIFYed.

        Raises:
            UnknownValueError: no agent or workflow of that name is defined in the database.
            InputError: an empty or too long field, a deadline not in the future,
                max_attempts below 1, a bad webhook URL or secret reference.
            DuplicateRunError: the caller already submitted a run with this idempotency key
                (the error names it, `existing` holds it).
        """
        ...

    async def get(self, run_id: str) -> Run:
        """The run with this id, or the one whose id begins with it (at least 4 characters).

        Raises:
            UnknownValueError: no run has it, or several begin with it.
        """
        ...

    async def list(
        self,
        *,
        status: RunStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        """Runs matching every filter given, newest first, at most `limit`."""
        ...

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: a queued one is cancelled at once (it never starts); a running one is
        marked (`cancel_requested_at`) and stops at its next call boundary, ended by its worker.
        Asking again for a running run changes nothing.

        Raises:
            UnknownValueError: no such run.
            RunEndedError: the run has ended already (the error says how).
        """
        ...

    async def claim(self, worker_id: str, *, lease_seconds: float) -> ClaimedRun | None:
        """The oldest claimable run, now held by `worker_id`, or None when there is none.

        Claimable: queued with `not_before` passed, or running with its lease expired (its
        worker was lost). A claim moves `lease_epoch` on by one and counts an attempt. A run
        past its deadline is failed instead; a lost run with no attempt left is failed saying
        its worker was lost; a lost run whose cancel was asked for is cancelled. Concurrent
        claimers never get the same run.
        """
        ...

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        """Extend the lease by `lease_seconds` from now; whether a cancel was asked for.

        Raises:
            LeaseLostError: the run is no longer running at this lease's epoch.
        """
        ...

    async def finish(self, lease: Lease, outcome: RunOutcome) -> Run:
        """End the attempt held by `lease`, fenced by its epoch; the run as it is now.

        `completed`, `failed`, `cancelled` end the run (its webhooks' deliveries are written
        in the same transaction). `retry`: queued again after an exponential backoff while
        attempts remain, else failed with the outcome's error. `handed_back`: queued at once,
        the attempt not counted.

        Raises:
            LeaseLostError: the run is no longer running at this lease's epoch; nothing changed.
        """
        ...

    async def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        """The run once it has ended (at once if it has).

        Raises:
            UnknownValueError: no such run.
            TimeoutError: `timeout` seconds passed first.
        """
        ...

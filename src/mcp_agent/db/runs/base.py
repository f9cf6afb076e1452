"""The domain objects of durable runs, shared by the run store, the workers and a run's
execution. ORM rows never leave the store: these do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

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

"""A durable run's step journal (`fa_run_steps`), and the fence every write of a run passes.

A step is something the run did whose result is stored, so a later attempt (after a crash, a
lost lease, a retry) gets the result back instead of doing it again: `call` (an agent call
that ended; stored by the turn store in the transaction of its turn), `llm` (a provider
request with its whole response) and `tool` (a tool call with its result). A step's key is
`step_key(kind, agent, request, occurrence)`: the same on every attempt that makes the same
requests in the same order.

Fencing: a write of a run names the lease epoch it holds (`Fence`). In its own transaction it
checks that the run is still `running` at that epoch while holding the run's row lock
(PostgreSQL: `FOR SHARE`, which a claim's `FOR UPDATE` waits for; SQLite: the write lock taken
first by a no-op UPDATE, so the check and the write are one serialised transaction). A claim
that moved the epoch on makes the write fail with `LeaseLostError`, and nothing of it is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.conversations.codec import escape_unstorable, unescape_unstorable
from mcp_agent.db.errors import LeaseLostError
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.models.runs import RunRow, RunStepRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime

if TYPE_CHECKING:
    from mcp_agent.db.turns.in_memory import InMemoryTurnStore

StepKind = Literal["call", "llm", "tool"]

#: Why executions an earlier attempt left `running` were marked interrupted.
WORKER_LOST = "its worker was lost: the run was taken over by another attempt"


@dataclass(frozen=True, slots=True)
class Fence:
    """The run a write belongs to and the lease epoch its writer holds."""

    run_id: str
    lease_epoch: int


@dataclass(frozen=True, slots=True)
class JournalStep:
    """One stored step of a run."""

    run_id: str
    step_key: str
    kind: StepKind
    agent_name: str
    #: The epoch of the attempt that stored it (its fence).
    lease_epoch: int
    #: The result as JSON: a reply, a tool result, a response's status and headers.
    response: dict[str, Any]
    #: A provider response's body, byte for byte.
    body: bytes | None = None

    @property
    def fence(self) -> Fence:
        return Fence(self.run_id, self.lease_epoch)


def step_key(kind: StepKind, agent_name: str, request: bytes, occurrence: int) -> str:
    """The key of the `occurrence`-th (from 0) identical `request` of `kind` by `agent_name`
    in a run: sha256 hex, 64 characters (the column's width)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([kind, agent_name, occurrence]).encode())
    digest.update(b"\0")
    digest.update(request)
    return digest.hexdigest()


def lease_lost(fence: Fence, status: str | None, epoch: int | None) -> LeaseLostError:
    """The error of a write refused by its fence, saying by which epoch it was lost."""
    if status is None:
        now = "no longer exists"
    elif status == "running":
        now = f"was claimed again: it runs at lease epoch {epoch} now"
    else:
        now = f"is {status} (lease epoch {epoch})"
    return LeaseLostError(
        f"run {fence.run_id}: the lease of epoch {fence.lease_epoch} was lost (the run {now}); "
        "this write was refused and nothing of it was stored"
    )


class RunJournal(Protocol):
    async def begin_attempt(self, fence: Fence) -> dict[str, JournalStep]:
        """Start an attempt at the run: mark the executions of the run an earlier attempt
        left `running` as `interrupted`, and return every stored step by key. Fenced.

        Raises:
            LeaseLostError: the run is not running at `fence.lease_epoch`.
        """
        ...

    async def put(self, step: JournalStep) -> bool:
        """Store `step`, fenced by its run and epoch; False when its key was stored already
        (the stored one is kept).

        Raises:
            LeaseLostError: the run is not running at `step.lease_epoch`; nothing stored.
        """
        ...


# ---------------------------------------------------------------------------------------------
# SQL


async def check_fence(connection: AsyncConnection, fence: Fence) -> None:
    """Within `connection`'s transaction: hold the run's row lock, and raise LeaseLostError
    unless the run is `running` at the fence's epoch."""
    if connection.dialect.name == "postgresql":
        found = (
            await connection.execute(
                select(RunRow.status, RunRow.lease_epoch)
                .where(RunRow.run_id == fence.run_id)
                .with_for_update(read=True)
            )
        ).first()
        if found is None or (found.status, found.lease_epoch) != ("running", fence.lease_epoch):
            raise lease_lost(fence, *(found or (None, None)))
        return
    # SQLite: a write first, so the transaction holds the database's write lock from here on
    # (a read first could not be upgraded once another writer committed in between).
    held = await connection.execute(
        update(RunRow)
        .where(
            RunRow.run_id == fence.run_id,
            RunRow.status == "running",
            RunRow.lease_epoch == fence.lease_epoch,
        )
        .values(lease_epoch=RunRow.lease_epoch)
    )
    if held.rowcount != 1:
        found = (
            await connection.execute(
                select(RunRow.status, RunRow.lease_epoch).where(RunRow.run_id == fence.run_id)
            )
        ).first()
        raise lease_lost(fence, *(found or (None, None)))


def _step_from_row(row: Any) -> JournalStep:
    return JournalStep(
        run_id=row.run_id,
        step_key=row.step_key,
        kind=row.kind,
        agent_name=row.agent_name,
        lease_epoch=row.lease_epoch,
        response=unescape_unstorable(row.response),
        body=row.body,
    )


def step_values(step: JournalStep) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "step_key": step.step_key,
        "kind": step.kind,
        "agent_name": step.agent_name,
        "lease_epoch": step.lease_epoch,
        # NUL and lone surrogates escaped as in messages (PostgreSQL's jsonb refuses NUL).
        "response": escape_unstorable(step.response),
        "body": step.body,
        "created_at": utc_now(),
    }


class SqlRunJournal:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def begin_attempt(self, fence: Fence) -> dict[str, JournalStep]:
        async with self._runtime.engine.begin() as connection:
            await check_fence(connection, fence)
            await connection.execute(
                update(ExecutionRow)
                .where(ExecutionRow.run_id == fence.run_id, ExecutionRow.status == "running")
                .values(status="interrupted", error=WORKER_LOST, finished_at=utc_now())
            )
            rows = await connection.execute(
                select(RunStepRow).where(RunStepRow.run_id == fence.run_id)
            )
            return {row.step_key: _step_from_row(row) for row in rows}

    async def put(self, step: JournalStep) -> bool:
        insert = postgres_insert if self._runtime.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(RunStepRow)
            .values(step_values(step))
            .on_conflict_do_nothing()
            .returning(RunStepRow.step_key)
        )
        async with self._runtime.engine.begin() as connection:
            await check_fence(connection, step.fence)
            stored = await connection.execute(statement)
            return stored.first() is not None

    async def steps(self, run_id: str) -> list[JournalStep]:
        """Every stored step of the run, oldest first (for inspection and tests)."""
        async with self._runtime.engine.connect() as connection:
            rows = await connection.execute(
                select(RunStepRow)
                .where(RunStepRow.run_id == run_id)
                .order_by(RunStepRow.created_at, RunStepRow.step_key)
            )
            return [_step_from_row(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# In memory


class InMemoryRunJournal:
    """The reference implementation and test double. It holds the runs' leases itself
    (`hold`, as a claim sets them); given to an `InMemoryTurnStore`, that store's writes are
    fenced by them and its executions are the ones `begin_attempt` marks interrupted."""

    def __init__(self) -> None:
        #: run id -> (status, lease epoch)
        self.runs: dict[str, tuple[str, int]] = {}
        self.stored: dict[str, dict[str, JournalStep]] = {}
        self.turns: InMemoryTurnStore | None = None

    def hold(self, run_id: str, lease_epoch: int, status: str = "running") -> None:
        """Set the run's status and epoch, as a claim (or the run's end) does."""
        self.runs[run_id] = (status, lease_epoch)

    def check(self, fence: Fence) -> None:
        found = self.runs.get(fence.run_id)
        if found != ("running", fence.lease_epoch):
            raise lease_lost(fence, *(found or (None, None)))

    async def begin_attempt(self, fence: Fence) -> dict[str, JournalStep]:
        self.check(fence)
        if self.turns is not None:
            self.turns.interrupt_run(fence.run_id, WORKER_LOST)
        return dict(self.stored.get(fence.run_id, {}))

    async def put(self, step: JournalStep) -> bool:
        self.check(step.fence)
        return self.keep(step)

    def keep(self, step: JournalStep) -> bool:
        """Store a step already fenced (the turn store's call steps)."""
        steps = self.stored.setdefault(step.run_id, {})
        if step.step_key in steps:
            return False
        steps[step.step_key] = step
        return True

    async def steps(self, run_id: str) -> list[JournalStep]:
        return list(self.stored.get(run_id, {}).values())

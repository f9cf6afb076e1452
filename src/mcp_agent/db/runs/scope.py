"""The scope of one attempt at a durable run: what its call boundaries check and its writes
name (`run_context.current_run` holds it while `execute_claimed_run` runs the agent).

At each boundary (an agent call, a provider request, a tool call) the attempt stops if the run
was cancelled, its deadline passed or its lease was lost. Upstream catches exceptions in some
places (a tool call's error becomes a tool result; the OpenAI SDK turns an error raised in its
HTTP client into a connection error after retrying), so the first such stop is remembered in
`stopped` and raised again by the next boundary and by the run's end: it is never swallowed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcp_agent.db.errors import FastAgentDbError, LeaseLostError, RunCancelledError
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import RunControl
from mcp_agent.db.runs.journal import Fence, JournalStep, RunJournal, StepKind, step_key


class RunDeadlineError(FastAgentDbError):
    """The run's deadline passed; it stops at the call boundary where this is raised."""


@dataclass(slots=True)
class RunScope:
    run_id: str
    control: RunControl
    journal: RunJournal
    deadline: datetime | None = None
    #: The steps stored by earlier attempts (and this one), by key.
    steps: dict[str, JournalStep] = field(default_factory=dict)
    #: The first stop raised at a boundary (cancel, deadline, lost lease), kept for re-raising.
    stopped: BaseException | None = None
    #: (kind, agent, request digest) -> how many times it was asked for so far.
    _occurrences: dict[tuple[str, str, bytes], int] = field(default_factory=dict)
    #: Steps replayed from the journal in this attempt, by kind (for logs and tests).
    replayed: dict[str, int] = field(default_factory=dict)

    @property
    def fence(self) -> Fence:
        return Fence(self.run_id, self.control.lease.epoch)

    def check_boundary(self, where: str) -> None:
        """Raise the stop due before `where` (a lost lease first: nothing can be written)."""
        if self.stopped is not None:
            raise self.stopped
        stop: BaseException | None = None
        if self.control.lease_lost:
            stop = LeaseLostError(
                f"run {self.run_id}: the lease of epoch {self.control.lease.epoch} was lost "
                f"(its renewal was refused); stopped before {where}"
            )
        elif self.control.cancel_requested:
            stop = RunCancelledError(f"run {self.run_id} was cancelled; stopped before {where}")
        elif self.deadline is not None and utc_now() >= self.deadline:
            stop = RunDeadlineError(
                f"run {self.run_id}: deadline passed ({self.deadline.isoformat()}); "
                f"stopped before {where}"
            )
        if stop is not None:
            self.stopped = stop
            raise stop

    def remember(self, error: BaseException) -> None:
        """Keep a stop raised by a write (a refused fence), so it cannot be swallowed."""
        if self.stopped is None and isinstance(
            error, LeaseLostError | RunCancelledError | RunDeadlineError
        ):
            self.stopped = error

    def key(self, kind: StepKind, agent_name: str, request: bytes) -> str:
        """The key of this request: the same request again in the run gets the next one."""
        digest = hashlib.sha256(request).digest()
        counted = (kind, agent_name, digest)
        occurrence = self._occurrences.get(counted, 0)
        self._occurrences[counted] = occurrence + 1
        return step_key(kind, agent_name, digest, occurrence)

    def replay(self, key: str) -> JournalStep | None:
        step = self.steps.get(key)
        if step is not None:
            self.replayed[step.kind] = self.replayed.get(step.kind, 0) + 1
        return step

    def step(
        self,
        kind: StepKind,
        agent_name: str,
        key: str,
        response: dict[str, Any],
        body: bytes | None = None,
    ) -> JournalStep:
        return JournalStep(
            run_id=self.run_id,
            step_key=key,
            kind=kind,
            agent_name=agent_name,
            lease_epoch=self.control.lease.epoch,
            response=response,
            body=body,
        )

    async def record(self, step: JournalStep) -> None:
        """Store a step, fenced; a refusal is remembered as the attempt's stop."""
        try:
            await self.journal.put(step)
        except LeaseLostError as refused:
            self.remember(refused)
            raise
        self.steps[step.step_key] = step

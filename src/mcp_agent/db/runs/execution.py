"""One attempt at a durable run, in a worker process: `execute_claimed_run`.

The run's agent runs as the API's in-process run runs it (`agent_runs.run_stored_agent`),
inside a run scope (`run_context.current_run`): every write of the run is fenced by the lease
epoch the worker claimed it with, each ended agent call, provider request and tool call is
journaled, and a later attempt replays what the journal holds instead of doing it again.
See docs/durable-runs.md ("Steps are journaled", "Crash recovery").
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from mcp_agent.db.clock import database_now
from mcp_agent.db.errors import (
    ConnectionLostError,
    DatabaseUnavailableError,
    LeaseLostError,
    RunCancelledError,
)
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.patches import run_steps
from mcp_agent.db.run_context import current_run
from mcp_agent.db.runs.agent_runs import RunFailedError, describe, run_stored_agent
from mcp_agent.db.runs.base import ClaimedRun, RunControl, RunOutcome
from mcp_agent.db.runs.journal import Fence, SqlRunJournal
from mcp_agent.db.runs.scope import RunDeadlineError, RunScope
from mcp_agent.db.runtime import DatabaseRuntime

#: Exceptions (anywhere in a failure's chain of causes) that another attempt may not meet:
#: the provider or the network, not the run's configuration or input.
_TRANSIENT_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "OverloadedError",
        "ConnectError",
        "ReadError",
        "ReadTimeout",
        "ConnectTimeout",
        "RemoteProtocolError",
    }
)
_PERMANENT_NAMES = frozenset({"ProviderKeyError", "AuthenticationError", "PermissionDeniedError"})


def _is_transient(error: BaseException) -> bool:
    """Whether a failure came from the provider or the network (worth another attempt)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if name in _PERMANENT_NAMES:
            return False
        if name in _TRANSIENT_NAMES or isinstance(
            current, ConnectionError | TimeoutError | ConnectionLostError
        ):
            return True
        status = getattr(current, "status_code", None)
        if isinstance(status, int) and (status >= 500 or status in (408, 409, 429)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _stopped_outcome(stop: BaseException) -> RunOutcome:
    """The outcome of an attempt stopped at a call boundary (a lost lease is raised)."""
    if isinstance(stop, LeaseLostError):
        raise stop
    if isinstance(stop, RunCancelledError):
        return RunOutcome("cancelled", error=str(stop))
    if isinstance(stop, RunDeadlineError):
        return RunOutcome("failed", error=f"deadline passed: {stop}")
    raise stop


async def _deadline_by_this_clock(
    runtime: DatabaseRuntime, deadline: datetime | None
) -> datetime | None:
    """`deadline` (when it passes by the database server's clock, on PostgreSQL) as the same
    moment by this machine's clock, which the call boundaries read: this worker's clock may
    be off (mcp_agent.db.clock)."""
    if deadline is None or runtime.dialect != "postgresql":
        return deadline
    async with runtime.engine.connect() as connection:
        offset = await database_now(connection, postgres=True) - utc_now()
    return deadline - offset


async def execute_claimed_run(
    runtime: DatabaseRuntime, claimed: ClaimedRun, control: RunControl
) -> RunOutcome:
    """Run one attempt at `claimed`, holding its lease; how it ended.

    Executions of the run left `running` by an earlier attempt are marked `interrupted`
    first. A cancel, a passed deadline or a lost lease stops the attempt at its next call
    boundary (an agent call, a provider request, a tool call).

    Raises:
        LeaseLostError: a write of the run was refused (another worker holds it now), or the
            heartbeat found the lease gone: the worker must not touch the run any more.
    """
    run = claimed.run
    if run.session_id is None:
        return RunOutcome("failed", error="the run's session was deleted before it could run")
    journal = SqlRunJournal(runtime)
    steps = await journal.begin_attempt(Fence(run.run_id, claimed.lease.epoch))
    scope = RunScope(
        run_id=run.run_id,
        control=control,
        journal=journal,
        deadline=await _deadline_by_this_clock(runtime, run.deadline),
        steps=steps,
    )
    token = current_run.set(scope)
    try:
        scope.check_boundary("the run started")
        with run_steps.recording():
            reply = await run_stored_agent(
                runtime.raw_url, run.session_id, run.agent_name, run.message, run.model
            )
    except (LeaseLostError, RunCancelledError, RunDeadlineError) as stop:
        return _stopped_outcome(scope.stopped or stop)
    except RunFailedError as failed:
        if scope.stopped is not None:
            return _stopped_outcome(scope.stopped)
        if failed.could_not_start:
            return RunOutcome("failed", error=failed.detail)
        return RunOutcome("retry" if _is_transient(failed) else "failed", error=failed.detail)
    except (DatabaseUnavailableError, OSError) as lost:
        if scope.stopped is not None:
            return _stopped_outcome(scope.stopped)
        return RunOutcome("retry", error=f"the attempt lost its database: {describe(lost)}")
    except asyncio.CancelledError:
        if scope.stopped is not None:
            return _stopped_outcome(scope.stopped)
        raise
    finally:
        current_run.reset(token)
    if scope.stopped is not None:
        # Stopped at a boundary whose error upstream swallowed, yet the reply came back.
        return _stopped_outcome(scope.stopped)
    return RunOutcome("completed", result=reply)

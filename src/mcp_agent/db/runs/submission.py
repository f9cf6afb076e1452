"""What every run store checks before it queues a run, and what it computes when an attempt
ends: the same rules in memory and in SQL."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta

from mcp_agent.db.errors import DuplicateRunError, InputError, UnknownValueError
from mcp_agent.db.limits import (
    AGENT_NAME_MAX_LENGTH,
    INTEGER_MAX,
    MODEL_NAME_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
    check_text,
)
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import Run, RunSubmission

_CALLER_MAX_LENGTH = RunRow.__table__.c.caller.type.length
_IDEMPOTENCY_KEY_MAX_LENGTH = RunRow.__table__.c.idempotency_key.type.length

#: A retry waits RETRY_BACKOFF_S * 2^(attempts - 1), at most RETRY_BACKOFF_MAX_S.
#: FAST_AGENT_DB_RUN_RETRY_BACKOFF_S changes the first wait (tests make it short).
RETRY_BACKOFF_ENV = "FAST_AGENT_DB_RUN_RETRY_BACKOFF_S"
RETRY_BACKOFF_S = 2.0
RETRY_BACKOFF_MAX_S = 300.0


def configured_retry_backoff_s() -> float:
    raw = os.environ.get(RETRY_BACKOFF_ENV, "").strip()
    if not raw:
        return RETRY_BACKOFF_S
    try:
        value = float(raw)
    except ValueError:
        raise InputError(RETRY_BACKOFF_ENV, f"{raw!r} is not a number of seconds") from None
    if not value >= 0:
        raise InputError(RETRY_BACKOFF_ENV, f"{raw!r} must be 0 or more seconds")
    return value


def retry_delay(attempts: int, base_s: float) -> timedelta:
    """How long a run that failed its `attempts`-th attempt waits before the next one."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), RETRY_BACKOFF_MAX_S))


def checked_submission(submission: RunSubmission, *, now: datetime | None = None) -> RunSubmission:
    """`submission` if it can be queued as it is (whether its agent exists is the store's to
    check, against the database).

    Raises:
        InputError: naming the field and what is wrong with it.
    """
    agent_name = submission.agent_name.strip()
    if not agent_name:
        raise InputError("agent", "is empty: name an agent or workflow defined in the database")
    check_text(agent_name, field="agent", max_length=AGENT_NAME_MAX_LENGTH)
    if not submission.message:
        raise InputError("message", "is empty: a run needs a message to send")
    check_text(submission.message, field="message")
    if submission.session_id is not None:
        if not submission.session_id.strip():
            raise InputError("session", "is empty: give a session id, or none for a new session")
        check_text(submission.session_id, field="session", max_length=SESSION_ID_MAX_LENGTH)
    if submission.model is not None:
        check_text(submission.model, field="model", max_length=MODEL_NAME_MAX_LENGTH)
    check_text(submission.caller, field="caller", max_length=_CALLER_MAX_LENGTH)
    if submission.idempotency_key is not None:
        if not submission.idempotency_key:
            raise InputError("idempotency_key", "is empty: give a key, or none")
        check_text(
            submission.idempotency_key,
            field="idempotency_key",
            max_length=_IDEMPOTENCY_KEY_MAX_LENGTH,
        )
    if submission.deadline is not None:
        if submission.deadline.tzinfo is None:
            raise InputError(
                "deadline", f"{submission.deadline.isoformat()} has no time zone (give one)"
            )
        now = now or utc_now()
        if submission.deadline <= now:
            raise InputError(
                "deadline",
                f"{submission.deadline.isoformat()} is not in the future "
                f"(it is {now.isoformat(timespec='seconds')} now)",
            )
    if not 1 <= submission.max_attempts <= INTEGER_MAX:
        raise InputError(
            "max_attempts", f"{submission.max_attempts} is out of range: at least 1 is needed"
        )
    if submission.webhook_url is not None:
        from mcp_agent.db.webhooks.validation import checked_secret_ref, checked_url

        checked_url(submission.webhook_url, field="webhook")
        checked_secret_ref(submission.webhook_secret_ref, field="webhook_secret")
    return replace(submission, agent_name=agent_name)


def unknown_agent(agent_name: str, defined: list[str]) -> UnknownValueError:
    shown = ", ".join(sorted(defined)[:10]) or "none"
    return UnknownValueError(
        f"no agent or workflow {agent_name!r} is defined in the database (defined: {shown}); "
        "store it first: fast-agent-db agents import FILE"
    )


def duplicate_run(existing: Run) -> DuplicateRunError:
    return DuplicateRunError(
        f"idempotency key {existing.idempotency_key!r} was already used by {existing.caller!r} "
        f"for run {existing.run_id} ({existing.status}, agent {existing.agent_name}); "
        "nothing was queued",
        existing_run_id=existing.run_id,
    )


def ended_error(run: Run) -> str:
    how = f"{run.status}"
    if run.finished_at is not None:
        how += f" at {run.finished_at.isoformat(timespec='seconds')}"
    return f"run {run.run_id} has ended ({how}): nothing to cancel"


def lost_worker_error(run: Run) -> str:
    """Why a run whose worker was lost on its last allowed attempt failed."""
    if run.error is None:
        times = "once" if run.attempts == 1 else f"{run.attempts} times"
        return f"its worker was lost {times} (max_attempts {run.max_attempts})"
    return (
        f"its worker was lost on attempt {run.attempts} of {run.max_attempts}; "
        f"an earlier attempt failed: {run.error}"
    )


DEADLINE_PASSED = "deadline passed before the run could end"

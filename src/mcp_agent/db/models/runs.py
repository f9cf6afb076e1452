"""Durable runs: a queue of runs in the database, their workers, their step journal, and the
webhooks told when they end (an outbox). See docs/durable-runs.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, CreatedAt, Timestamps
from mcp_agent.db.models.types import BigIntId, JsonB, UTCDateTime

RUN_STATUSES = ("queued", "running", "waiting", "completed", "failed", "cancelled")
RUN_STEP_KINDS = ("call", "llm", "tool")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class RunRow(Timestamps, Base):
    """One run of an agent or workflow on one message, queued until a worker claims it.

    A worker holds a run by its lease: `lease_owner` until `lease_expires_at`, renewed by its
    heartbeat. `lease_epoch` grows by one at every claim and is the fencing token: every write a
    run makes (its turns, its journal, its end) names the epoch it holds and is refused once
    another claim has moved the epoch on.
    """

    __tablename__ = "fa_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'waiting', 'completed', 'failed', 'cancelled')",
            name="status_known",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        UniqueConstraint("caller", "idempotency_key"),
        Index("ix_fa_runs_status_not_before", "status", "not_before"),
        Index("ix_fa_runs_created_at", "created_at"),
    )

    #: A UUID string.
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(200))
    #: The session the run continues; its runs stay when it is deleted, without it.
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    #: For agents whose definition names no model (as `run --model`).
    model: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    #: Who submitted it (an API token's name, `cli`, `library`): idempotency keys are per caller.
    caller: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    #: Not claimed before this time (a retry's backoff).
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Failed, not run, once this passes.
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The reply, once completed.
    result: Mapped[str | None] = mapped_column(Text)
    #: Why it failed (or was cancelled), for people.
    error: Mapped[str | None] = mapped_column(Text)


class RunStepRow(CreatedAt, Base):
    """A step of a run whose result is stored, so a later attempt does not do it again.

    `call`: an agent call that ended (its turn is stored with it); `llm`: a provider request
    with its whole response; `tool`: a tool call with its result. `step_key` identifies the step
    within the run (a hash of its kind, agent, request and occurrence), the same on every
    attempt of a run that repeats the same requests.
    """

    __tablename__ = "fa_run_steps"
    __table_args__ = (CheckConstraint("kind IN ('call', 'llm', 'tool')", name="kind_known"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("fa_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    step_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    agent_name: Mapped[str] = mapped_column(String(200))
    #: The epoch of the attempt that stored it.
    lease_epoch: Mapped[int] = mapped_column(Integer)
    #: The step's result as a JSON document (a provider response's status and headers).
    response: Mapped[dict[str, Any]] = mapped_column(JsonB)
    #: A provider response's body, byte for byte (a stream is replayed as it arrived).
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


class WorkerRow(Base):
    """A `fast-agent-db worker` process: who claims runs, seen by its heartbeat."""

    __tablename__ = "fa_workers"

    #: host:pid
    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookRow(CreatedAt, Base):
    """Where to POST when a run ends: a subscription (every run, or one agent's) or one run's.

    The signing secret is never stored: `secret_ref` names where it is read from
    (`env:NAME`), as settings name their API keys.
    """

    __tablename__ = "fa_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_ref: Mapped[str] = mapped_column(String(200))
    #: Which ends it is told of: a list of `run.completed`, `run.failed`, `run.cancelled`.
    events: Mapped[list[str]] = mapped_column(JsonB)
    #: Only this agent's runs (a subscription); None: every agent's.
    agent_name: Mapped[str | None] = mapped_column(String(200))
    #: Only this run (given when it was submitted); None: a subscription.
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_runs.run_id", ondelete="CASCADE"), index=True
    )
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDeliveryRow(CreatedAt, Base):
    """One POST to make (the outbox): written in the transaction that ends the run, then
    delivered with retries. The URL and secret reference are copied from the webhook, so a
    delivery still goes where it was meant to after its webhook is removed."""

    __tablename__ = "fa_webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        Index("ix_fa_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )

    #: A UUID string, sent as the delivery id header: receivers use it to drop repeats.
    delivery_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_webhooks.webhook_id", ondelete="SET NULL"), index=True
    )
    run_id: Mapped[str] = mapped_column(
        ForeignKey("fa_runs.run_id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2000))
    secret_ref: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttemptRow(Base):
    """One try at a delivery, kept: when, by whom, what the receiver answered."""

    __tablename__ = "fa_webhook_attempts"

    attempt_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("fa_webhook_deliveries.delivery_id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    worker_id: Mapped[str] = mapped_column(String(200))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

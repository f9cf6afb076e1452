"""Executions (a tree of user-level and sub-agent calls) and their token usage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, CreatedAt
from mcp_agent.db.models.types import BigIntId, JsonB, UTCDateTime

EXECUTION_STATUSES = ("running", "completed", "failed", "interrupted")

#: Cost in the models' currency; eight decimals keep per-call costs of cheap models exact.
Cost = Numeric(18, 8)


class ExecutionRow(Base):
    """One call of an agent: a user-level send/generate/structured, or a workflow's sub-call."""

    __tablename__ = "fa_executions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'completed', 'failed', 'interrupted')", name="status_known"
        ),
        Index("ix_fa_executions_session_started", "session_id", "started_at"),
        Index("ix_fa_executions_agent_started", "agent_name", "started_at"),
    )

    #: A UUID string, made by the process that starts the execution.
    execution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_executions.execution_id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="SET NULL")
    )
    agent_name: Mapped[str] = mapped_column(String(200))
    agent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("fa_agent_versions.agent_version_id", ondelete="SET NULL"), index=True
    )
    #: send | generate | structured | step | fan_out | fan_in | route | plan_step | iteration
    operation: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal | None] = mapped_column(Cost)
    error: Mapped[str | None] = mapped_column(Text)
    #: host:pid of the process running it; rows of a dead worker are marked interrupted.
    worker_id: Mapped[str | None] = mapped_column(String(200))
    #: Where the run's settings came from: `database`, or `file PATH` (see fastagent.py).
    settings_source: Mapped[str | None] = mapped_column(String(1000))
    #: The durable run (fa_runs) this call belongs to, if a worker ran it.
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_runs.run_id", ondelete="SET NULL"), index=True
    )


class UsageTurnRow(CreatedAt, Base):
    """One provider API call's usage (upstream `TurnUsage`), attributed to an execution."""

    __tablename__ = "fa_usage_turns"

    usage_turn_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("fa_executions.execution_id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    tool_use_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal | None] = mapped_column(Cost)
    raw_usage: Mapped[dict[str, Any] | None] = mapped_column(JsonB)

"""Agent state (key/value per agent, optionally per session) and human-input requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, CreatedAt
from mcp_agent.db.models.types import JsonB, UTCDateTime, utc_now


class AgentStateRow(Base):
    """A value an agent keeps: for one session, or for all sessions when session_id is NULL."""

    __tablename__ = "fa_agent_state"
    __table_args__ = (
        # NULL never equals NULL in a unique constraint, so the two scopes get one index each.
        Index(
            "uq_fa_agent_state_session_key",
            "agent_name",
            "session_id",
            "state_key",
            unique=True,
            postgresql_where=text("session_id IS NOT NULL"),
            sqlite_where=text("session_id IS NOT NULL"),
        ),
        Index(
            "uq_fa_agent_state_global_key",
            "agent_name",
            "state_key",
            unique=True,
            postgresql_where=text("session_id IS NULL"),
            sqlite_where=text("session_id IS NULL"),
        ),
    )

    state_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="CASCADE")
    )
    state_key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JsonB)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class HumanInputRequestRow(CreatedAt, Base):
    """A question an agent asked a human, and the answer once given."""

    __tablename__ = "fa_human_input_requests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'answered', 'timed_out', 'cancelled')", name="status_known"
        ),
        Index("ix_fa_human_input_requests_status_created", "status", "created_at"),
    )

    #: upstream's request id (`__human_input___<agent>_<uuid>`).
    request_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="CASCADE"), index=True
    )
    execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_executions.execution_id", ondelete="SET NULL")
    )
    agent_name: Mapped[str | None] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    request_metadata: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    response: Mapped[str | None] = mapped_column(Text)
    response_metadata: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    responded_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

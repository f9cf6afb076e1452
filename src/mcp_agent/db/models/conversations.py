"""Sessions and their messages: conversation history that outlives the process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, CreatedAt, Timestamps
from mcp_agent.db.models.types import BigIntId, JsonB, UTCDateTime


class SessionRow(Timestamps, Base):
    """One conversation of an app, across all of its agents.

    A branch (fork) names its parent session and the parent message it branched after; it
    shares the parent's history up to that point without copying rows.
    """

    __tablename__ = "fa_sessions"

    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    app_name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(500))
    parent_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="RESTRICT"), index=True
    )
    branch_point_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("fa_messages.message_id", ondelete="RESTRICT", use_alter=True)
    )
    #: Which process may append to the session and until when (a lease), see issue #5.
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_metadata: Mapped[dict[str, Any] | None] = mapped_column(JsonB)


class MessageRow(CreatedAt, Base):
    """One message of one agent in one session.

    `content` is the provider-agnostic multipart message (upstream `PromptMessageMultipart`,
    text, images, resources, tool calls and results); `provider_messages` holds the
    provider-native messages this message contributed to the provider's history, so the next
    request can be rebuilt exactly. `sequence` is strict and gap-free per session and agent.
    """

    __tablename__ = "fa_messages"
    __table_args__ = (
        UniqueConstraint("session_id", "agent_name", "sequence"),
        CheckConstraint("role IN ('user', 'assistant')", name="role_known"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
    )

    message_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("fa_sessions.session_id", ondelete="CASCADE")
    )
    agent_name: Mapped[str] = mapped_column(String(200))
    sequence: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JsonB)
    #: openai | anthropic | google | ... ; None when the model keeps no provider history.
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_messages: Mapped[list[Any] | None] = mapped_column(JsonB)
    #: A template/prompt message that upstream keeps in front of every request.
    is_prompt: Mapped[bool] = mapped_column(default=False)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("fa_executions.execution_id", ondelete="SET NULL"), index=True
    )

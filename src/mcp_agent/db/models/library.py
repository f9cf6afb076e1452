"""Prompts and resources that agents can be given (upstream's prompt files and resources)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, Timestamps
from mcp_agent.db.models.types import JsonB


class PromptRow(Timestamps, Base):
    """A named prompt: multipart messages with `{{argument}}` placeholders."""

    __tablename__ = "fa_prompts"

    prompt_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    #: Argument names with descriptions and whether required.
    arguments: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonB)
    #: Upstream `PromptMessageMultipart` list, JSON by alias.
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JsonB)


class ResourceRow(Timestamps, Base):
    """A resource by URI: text or binary content with its MIME type."""

    __tablename__ = "fa_resources"
    __table_args__ = (
        CheckConstraint(
            "(text_content IS NULL) <> (blob_content IS NULL)", name="one_kind_of_content"
        ),
    )

    resource_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(1000), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(String(200))
    text_content: Mapped[str | None] = mapped_column(Text)
    blob_content: Mapped[bytes | None] = mapped_column(LargeBinary)

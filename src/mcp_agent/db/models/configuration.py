"""Configuration: what fastagent.config.yaml and fastagent.secrets.yaml hold upstream.

Secrets are never stored as values: `api_key_ref` and the secret parts of server `auth`, `env`
and `headers` hold references such as `env:ANTHROPIC_API_KEY`, resolved when used.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, Timestamps
from mcp_agent.db.models.types import BigIntId, JsonB, UTCDateTime, utc_now

#: Price per million tokens: six decimals covers sub-cent prices of small models.
Price = Numeric(14, 6)


class ProviderRow(Timestamps, Base):
    """An LLM provider section of upstream's Settings (anthropic, openai, generic, azure, ...)."""

    __tablename__ = "fa_providers"

    provider_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str | None] = mapped_column(Text)
    api_key_ref: Mapped[str | None] = mapped_column(Text)
    #: The section's other fields (cache_mode, reasoning_effort, azure resource_name, ...).
    options: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    #: True when the provider is a section of the settings; rows that exist only to own
    #: models (for prices) are not, so they do not appear in Settings or exports.
    configured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ModelRow(Timestamps, Base):
    """A model of a provider, with its context window and prices for cost accounting."""

    __tablename__ = "fa_models"
    __table_args__ = (
        UniqueConstraint("provider_id", "name"),
        CheckConstraint(
            "context_window IS NULL OR context_window > 0", name="context_window_positive"
        ),
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("fa_providers.provider_id", ondelete="RESTRICT")
    )
    name: Mapped[str] = mapped_column(String(200))
    context_window: Mapped[int | None] = mapped_column(Integer)
    max_output_tokens: Mapped[int | None] = mapped_column(Integer)
    input_price_per_mtok: Mapped[Decimal | None] = mapped_column(Price)
    output_price_per_mtok: Mapped[Decimal | None] = mapped_column(Price)
    cache_read_price_per_mtok: Mapped[Decimal | None] = mapped_column(Price)
    cache_write_price_per_mtok: Mapped[Decimal | None] = mapped_column(Price)
    currency: Mapped[str] = mapped_column(String(3), default="USD")


class McpServerRow(Timestamps, Base):
    """An MCP server: every field of upstream's `MCPServerSettings`."""

    __tablename__ = "fa_mcp_servers"
    __table_args__ = (
        CheckConstraint("transport IN ('stdio', 'sse', 'http')", name="transport_known"),
    )

    server_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    transport: Mapped[str] = mapped_column(String(16), default="stdio")
    command: Mapped[str | None] = mapped_column(Text)
    args: Mapped[list[str] | None] = mapped_column(JsonB)
    cwd: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    read_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    read_transport_sse_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, str] | None] = mapped_column(JsonB)
    env: Mapped[dict[str, str] | None] = mapped_column(JsonB)
    #: `MCPServerAuthSettings`: `api_key` as a reference, plus any extra keys.
    auth: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    #: List of `MCPRootSettings` (uri, name, server_uri_alias).
    roots: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonB)
    #: `MCPSamplingSettings` (model plus extra keys).
    sampling: Mapped[dict[str, Any] | None] = mapped_column(JsonB)


class SettingRow(Base):
    """A global setting by dotted key: default_model, logger.level, otel.enabled, ..."""

    __tablename__ = "fa_settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonB)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class ConfigChangeRow(Base):
    """One change to the configuration: when, what, old and new value, by whom if known."""

    __tablename__ = "fa_config_changes"
    __table_args__ = (
        Index("ix_fa_config_changes_entity", "entity_type", "entity_name", "changed_at"),
    )

    change_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: setting | provider | model | mcp_server | agent
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_name: Mapped[str] = mapped_column(String(200))
    field: Mapped[str | None] = mapped_column(String(200))
    #: insert | update | delete
    operation: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[Any | None] = mapped_column(JsonB)
    new_value: Mapped[Any | None] = mapped_column(JsonB)
    changed_by: Mapped[str | None] = mapped_column(String(200))

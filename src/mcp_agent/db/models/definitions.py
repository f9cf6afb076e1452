"""Agent and workflow definitions, versioned.

`fa_agents` is an agent's identity (its name); every change to its definition adds an
immutable row to `fa_agent_versions`, and `current_version_id` says which one runs. The links
of a version (chain steps, fan-out, router targets, orchestrator children, generator and
evaluator) and its MCP servers are rows too, so a definition is queryable and referential
integrity holds: a version cannot name an agent or server that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base, CreatedAt, Timestamps
from mcp_agent.db.models.types import JsonB, UTCDateTime

AGENT_TYPES = (
    "agent",
    "chain",
    "parallel",
    "router",
    "orchestrator",
    "evaluator_optimizer",
    "custom",
)

#: How a child agent takes part in a workflow version.
LINK_ROLES = (
    "sequence",  # chain step
    "fan_out",  # parallel branch
    "fan_in",  # parallel aggregator
    "router_target",  # router candidate
    "orchestrated",  # orchestrator child
    "generator",  # evaluator-optimizer generator
    "evaluator",  # evaluator-optimizer evaluator
)


def _sql_in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class AgentRow(Timestamps, Base):
    """An agent's identity; what it does is in its versions."""

    __tablename__ = "fa_agents"

    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "fa_agent_versions.agent_version_id",
            ondelete="SET NULL",
            use_alter=True,
        )
    )
    #: Soft delete: executions and links of old versions keep pointing at the agent.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgentVersionRow(CreatedAt, Base):
    """One immutable version of an agent's definition, with every type-specific field."""

    __tablename__ = "fa_agent_versions"
    __table_args__ = (
        UniqueConstraint("agent_id", "version"),
        CheckConstraint(f"agent_type IN ({_sql_in(AGENT_TYPES)})", name="agent_type_known"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint(
            "plan_type IS NULL OR plan_type IN ('full', 'iterative')", name="plan_type_known"
        ),
        CheckConstraint(
            "min_rating IS NULL OR min_rating IN ('POOR', 'FAIR', 'GOOD', 'EXCELLENT')",
            name="min_rating_known",
        ),
    )

    agent_version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("fa_agents.agent_id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    agent_type: Mapped[str] = mapped_column(String(32))
    instruction: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    use_history: Mapped[bool] = mapped_column(Boolean, default=True)
    human_input: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    #: upstream `RequestParams` fields that differ from its defaults.
    request_params: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    # chain
    cumulative: Mapped[bool | None] = mapped_column(Boolean)
    # parallel
    include_request: Mapped[bool | None] = mapped_column(Boolean)
    # orchestrator
    plan_type: Mapped[str | None] = mapped_column(String(16))
    plan_iterations: Mapped[int | None] = mapped_column(Integer)
    # evaluator_optimizer
    min_rating: Mapped[str | None] = mapped_column(String(16))
    max_refinements: Mapped[int | None] = mapped_column(Integer)
    # custom: dotted path of the agent class
    agent_class: Mapped[str | None] = mapped_column(String(500))
    #: SHA-256 of the canonical definition: a re-registration only adds a version on change.
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Where the version came from: decorator | cli | import | api | rollback.
    source: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(200))


class AgentLinkRow(Base):
    """A child agent of a workflow version, with its role and position."""

    __tablename__ = "fa_agent_links"
    __table_args__ = (
        CheckConstraint(f"role IN ({_sql_in(LINK_ROLES)})", name="role_known"),
        CheckConstraint("position >= 0", name="position_not_negative"),
    )

    agent_version_id: Mapped[int] = mapped_column(
        ForeignKey("fa_agent_versions.agent_version_id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_agent_id: Mapped[int] = mapped_column(
        ForeignKey("fa_agents.agent_id", ondelete="RESTRICT"), index=True
    )


class AgentServerRow(Base):
    """An MCP server an agent version uses, in the order it lists them."""

    __tablename__ = "fa_agent_servers"
    __table_args__ = (CheckConstraint("position >= 0", name="position_not_negative"),)

    agent_version_id: Mapped[int] = mapped_column(
        ForeignKey("fa_agent_versions.agent_version_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(
        ForeignKey("fa_mcp_servers.server_id", ondelete="RESTRICT"), index=True
    )

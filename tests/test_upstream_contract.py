"""The parts of upstream fast-agent that schema v1 mirrors still look the way we mirrored them.

Run after bumping the fast-agent-mcp pin (see UPSTREAM_SYNC.md): a new server field, agent
type or rating in upstream fails here, naming what the schema is missing.
"""

from __future__ import annotations

from mcp_agent.agents.workflow.evaluator_optimizer import QualityRating
from mcp_agent.config import MCPServerSettings
from mcp_agent.core.agent_types import AgentType

from mcp_agent.db.models import McpServerRow
from mcp_agent.db.models.definitions import AGENT_TYPES


def test_every_mcp_server_setting_has_a_column() -> None:
    columns = set(McpServerRow.__table__.columns.keys())
    missing = set(MCPServerSettings.model_fields) - columns
    assert not missing, f"fa_mcp_servers lacks columns for MCPServerSettings fields {missing}"


def test_every_upstream_agent_type_is_allowed() -> None:
    assert {agent_type.value for agent_type in AgentType} == set(AGENT_TYPES)


def test_quality_ratings_match_the_min_rating_check() -> None:
    assert [rating.name for rating in QualityRating] == ["POOR", "FAIR", "GOOD", "EXCELLENT"]

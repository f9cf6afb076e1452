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


def test_the_names_we_override_or_wrap_still_exist() -> None:
    import inspect

    import mcp_agent.config as upstream_config
    from mcp_agent.core.fastagent import FastAgent
    from mcp_agent.llm.model_factory import ModelFactory
    from mcp_agent.llm.provider_key_manager import ProviderKeyManager
    from mcp_agent.mcp.mcp_connection_manager import MCPConnectionManager

    assert hasattr(upstream_config, "_settings")
    assert callable(FastAgent._load_config)
    assert list(inspect.signature(ProviderKeyManager.get_config_file_key).parameters) == [
        "provider_name",
        "config",
    ]
    assert inspect.iscoroutinefunction(MCPConnectionManager.launch_server)
    assert list(inspect.signature(MCPConnectionManager.launch_server).parameters)[:2] == [
        "self",
        "server_name",
    ]
    assert callable(ModelFactory.parse_model_string)


def test_the_definition_seams_still_exist() -> None:
    import inspect

    from mcp_agent.core import direct_decorators
    from mcp_agent.core.agent_app import AgentApp
    from mcp_agent.core.fastagent import FastAgent

    for name in (
        "agent",
        "custom",
        "chain",
        "parallel",
        "router",
        "orchestrator",
        "evaluator_optimizer",
    ):
        assert list(inspect.signature(getattr(direct_decorators, name)).parameters)[0] == "self"
    assert "_agents" in inspect.getsource(AgentApp.__init__)
    assert "self.args" in inspect.getsource(FastAgent.__init__)


def test_the_history_seams_still_exist() -> None:
    import inspect

    from mcp_agent.llm.augmented_llm import AugmentedLLM
    from mcp_agent.llm.memory import SimpleMemory

    assert "self._message_history" in inspect.getsource(AugmentedLLM.__init__)
    memory = SimpleMemory()
    memory.set([{"role": "user", "content": "x"}])
    assert memory.history == [{"role": "user", "content": "x"}]

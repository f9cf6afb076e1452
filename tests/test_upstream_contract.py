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


# --- The runtime patches (src/mcp_agent/db/patches): each target still has the shape the patch
# relies on. A failure here means a pin bump moved something a patch swaps or reads.


def test_secret_resolution_targets() -> None:
    import inspect

    from mcp_agent.llm.provider_key_manager import ProviderKeyManager
    from mcp_agent.mcp import mcp_connection_manager

    from mcp_agent import mcp_server_registry

    assert isinstance(vars(ProviderKeyManager)["get_config_file_key"], staticmethod)
    assert list(inspect.signature(ProviderKeyManager.get_config_file_key).parameters) == [
        "provider_name",
        "config",
    ]
    launch = inspect.getsource(mcp_connection_manager.MCPConnectionManager.launch_server)
    assert inspect.iscoroutinefunction(mcp_connection_manager.MCPConnectionManager.launch_server)
    # The transports get env by keyword and headers second; the connection its config by keyword.
    assert "StdioServerParameters(" in launch and "env=" in launch
    assert (
        "sse_client(\n                        config.url,\n                        config.headers"
        in launch
    )
    assert "streamablehttp_client(config.url, config.headers)" in launch
    assert "server_config=config" in launch
    assert "server_config.auth" in inspect.getsource(mcp_connection_manager.ServerConnection)
    registry = inspect.getsource(mcp_server_registry.ServerRegistry)
    assert "StdioServerParameters(" in registry and "env=" in registry
    # The stdio patch resolves command, args, cwd and env passed by keyword.
    for source in (launch, registry):
        for keyword in ("command=", "args=", "cwd=", "env="):
            assert keyword in source, keyword
    for module in (mcp_connection_manager, mcp_server_registry):
        for name in ("StdioServerParameters", "sse_client", "streamablehttp_client"):
            assert name in vars(module), f"{module.__name__} no longer imports {name}"


def test_agent_creation_target() -> None:
    import inspect

    from mcp_agent.core import fastagent

    assert inspect.iscoroutinefunction(fastagent.create_agents_in_dependency_order)
    run = inspect.getsource(fastagent.FastAgent.run)
    # Agents are created before --server, --message and --prompt-file are handled.
    created = run.index("create_agents_in_dependency_order(")
    for handled in ("self.args.server", "self.args.message", "self.args.prompt_file"):
        assert created < run.index(handled), handled


def test_go_command_and_event_transport_targets() -> None:
    import inspect

    from mcp_agent.cli.commands import go
    from mcp_agent.logging import logger as upstream_logger
    from mcp_agent.logging.transport import AsyncEventBus

    assert "FastAgent(**fast_kwargs)" in inspect.getsource(go._run_agent)
    assert "FastAgent" in vars(go)
    assert hasattr(AsyncEventBus.get(), "transport")
    assert isinstance(upstream_logger._loggers, dict)
    assert "self.event_bus" in inspect.getsource(upstream_logger.Logger)


def test_agent_calls_target() -> None:
    import inspect

    from mcp_agent.agents.base_agent import BaseAgent

    for operation in ("generate", "structured"):
        assert inspect.iscoroutinefunction(getattr(BaseAgent, operation))
    # send reaches generate through the instance, so an instance attribute sees it.
    assert "self.generate(" in inspect.getsource(BaseAgent.send)


def test_run_steps_targets() -> None:
    """patches/run_steps: the SDKs' httpx client class inherits `send` from httpx (the patch
    sets and then deletes its own), and every tool call goes through MCPAggregator.call_tool."""
    import inspect

    import anthropic._base_client
    import httpx
    import openai._base_client
    from mcp_agent.llm.augmented_llm import AugmentedLLM
    from mcp_agent.llm.augmented_llm_passthrough import PassthroughLLM
    from mcp_agent.mcp.mcp_aggregator import MCPAggregator

    from mcp_agent.db.patches import run_steps

    wrappers = (
        openai._base_client.AsyncHttpxClientWrapper,
        anthropic._base_client.AsyncHttpxClientWrapper,
    )
    original_call_tool = vars(MCPAggregator)["call_tool"]
    for wrapper in wrappers:
        assert issubclass(wrapper, httpx.AsyncClient) and "send" not in vars(wrapper)
        assert "AsyncHttpxClientWrapper(" in inspect.getsource(inspect.getmodule(wrapper))
    assert "self.aggregator.call_tool(" in inspect.getsource(AugmentedLLM.call_tool)
    assert "self.aggregator.call_tool(" in inspect.getsource(
        PassthroughLLM._call_tool_and_return_result
    )
    with run_steps.recording():
        assert all("send" in vars(wrapper) for wrapper in wrappers)
        assert vars(MCPAggregator)["call_tool"] is not original_call_tool
    assert not any("send" in vars(wrapper) for wrapper in wrappers)
    assert vars(MCPAggregator)["call_tool"] is original_call_tool


async def test_patches_hold_only_during_a_database_backed_run(
    database_url: str, fresh_upstream_state: None
) -> None:
    from mcp_agent.cli.commands import go
    from mcp_agent.core import fastagent as upstream_fastagent
    from mcp_agent.llm.provider_key_manager import ProviderKeyManager
    from mcp_agent.logging.transport import AsyncEventBus
    from mcp_agent.mcp import mcp_connection_manager

    from mcp_agent.db.fastagent import FastAgent

    def targets() -> dict[str, object]:
        return {
            "key": vars(ProviderKeyManager)["get_config_file_key"],
            "launch": vars(mcp_connection_manager.MCPConnectionManager)["launch_server"],
            "stdio": mcp_connection_manager.StdioServerParameters,
            "connection": mcp_connection_manager.ServerConnection,
            "create": upstream_fastagent.create_agents_in_dependency_order,
            "go": go.FastAgent,
        }

    before = targets()
    fast = FastAgent("patches", database_url=database_url, parse_cli_args=False)

    @fast.agent(name="default", model="passthrough")
    async def main() -> None:
        async with fast.run() as app:
            during = targets()
            assert await app.send("hi") == "hi"
            assert "generate" in vars(app._agents["default"])
            assert type(AsyncEventBus.get().transport).__name__ == "CapturingTransport"
            return during

    during = await main()
    after = targets()
    assert {name for name in before if during[name] is not before[name]} == {
        "key",
        "launch",
        "stdio",
        "connection",
        "create",
    }
    assert after == before
    assert all(after[name] is before[name] for name in before)
    assert type(AsyncEventBus.get().transport).__name__ != "CapturingTransport"

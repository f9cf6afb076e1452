"""Every runtime change fast-agent-db makes to upstream fast-agent, in one place.

fast-agent-db never edits upstream's files; where it must change upstream's behaviour it swaps
one attribute of an upstream module or class, and only while it needs to. Each module here
owns one such change as an install/uninstall pair (see `attribute.AttributePatch`), and
tests/test_upstream_contract.py checks, for each, that upstream still has the shape the patch
relies on, so a pin bump that moves it fails loudly instead of silently bypassing the database.

* `drop_in`: `mcp_agent.core.fastagent.FastAgent`; process-wide, only when a database is
  configured.
* `go_command`: `mcp_agent.cli.commands.go.FastAgent`; while `fast-agent-db go` runs.
* `secret_resolution`: `ProviderKeyManager.get_config_file_key`, and the stdio/SSE/HTTP
  transports and `ServerConnection` as named in `mcp_connection_manager` and
  `mcp_server_registry`; during a database-backed run.
* `agent_creation`: `mcp_agent.core.fastagent.create_agents_in_dependency_order`; during a
  database-backed run.
* `event_transport`: the event bus's `transport` and cached loggers' `event_bus`; during a
  database-backed run.
* `agent_calls`: each running agent instance's `generate` / `structured`; during a
  database-backed run.
* `run_steps`: the OpenAI and Anthropic SDKs' `AsyncHttpxClientWrapper.send` and
  `MCPAggregator.call_tool`; while a worker executes a durable run (the step journal).
* `llm_histories`: an LLM's `_message_history` and `history`, read and written (not replaced).

This package's `__init__` imports nothing: the drop-in activation loads `drop_in` on every
import of upstream's FastAgent, database or not.
"""

"""`mcp_agent.db.FastAgent`: upstream's FastAgent with the database as the source of truth.

Unchanged decorators and workflows run as with upstream; what differs is where things come
from and go to:
* settings (providers, models, MCP servers, logger, ...) come from the database instead of
  fastagent.config.yaml / fastagent.secrets.yaml;
* the agents a run uses are recorded as definitions (upsert by name, a new version only when
  a definition changed), and stored definitions can be loaded without any Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import mcp_agent.config as upstream_config
from mcp_agent.core.agent_app import AgentApp
from mcp_agent.core.fastagent import FastAgent as UpstreamFastAgent

from mcp_agent.db import run_context
from mcp_agent.db.conversations.binding import ConversationBinding
from mcp_agent.db.conversations.sql import SqlConversationStore, make_session_id
from mcp_agent.db.definitions.loader import captured_specs, register_definitions
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.events.capture import EventWriter, spill_directory
from mcp_agent.db.events.capture import install as install_event_capture
from mcp_agent.db.events.capture import uninstall as uninstall_event_capture
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.executions.tracking import RunRecorder, interrupt_dead_workers
from mcp_agent.db.executions.usage import PriceBook
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.build import build_settings
from mcp_agent.db.settings.document import ConfigDocument
from mcp_agent.db.settings.hooks import install_secret_resolution
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.sync_bridge import run_blocking
from mcp_agent.db.urls import resolve_database_url


async def load_document(database_url: str) -> ConfigDocument:
    async with await DatabaseRuntime.open(database_url) as runtime:
        return await SqlSettingsStore(runtime).load_document()


class FastAgent(UpstreamFastAgent):
    """Upstream's FastAgent, configured from a database.

    Args:
        database_url: where the database is; default FAST_AGENT_DATABASE_URL, then
            ./fastagent.db. The schema must be current (`fast-agent-db db upgrade`).
        session_id: the conversation to continue (every agent's history in it is restored
            when the run starts); default a new session, whose id is `self.session_id`.
        Other arguments are upstream's.
    """

    def __init__(
        self,
        name: str,
        config_path: str | None = None,
        ignore_unknown_args: bool = False,
        parse_cli_args: bool = True,
        *,
        database_url: str | None = None,
        session_id: str | None = None,
    ) -> None:
        # Set before super().__init__, which calls _load_config.
        self.database_url = resolve_database_url(database_url)
        #: The conversation this app's agents continue; a new one unless given.
        self.session_id = session_id or make_session_id()
        #: agent name -> fa_agent_versions.agent_version_id of what this run uses.
        self.definition_versions: dict[str, int | None] = {}
        super().__init__(
            name,
            config_path=config_path,
            ignore_unknown_args=ignore_unknown_args,
            parse_cli_args=parse_cli_args,
        )

    def _load_config(self) -> None:
        """Settings from the database; no configuration file is read."""
        install_secret_resolution()
        settings = build_settings(
            run_blocking(load_document(self.database_url)), database_url=self.database_url
        )
        # Upstream code that calls get_settings() later (usage display, global context)
        # must see the same settings, not a YAML file found by walking up from the cwd.
        upstream_config._settings = settings
        self.config = settings.model_dump()

    async def load_definitions(self, *names: str) -> None:
        """Register stored definitions of `names` and of every agent they depend on."""
        async with await DatabaseRuntime.open(self.database_url) as runtime:
            definitions = await SqlDefinitionStore(runtime).current()
            known_servers = set((await SqlSettingsStore(runtime).load_document()).servers)
        self.definition_versions.update(
            register_definitions(self.agents, definitions, list(names), known_servers=known_servers)
        )

    async def record_definitions(self, runtime: DatabaseRuntime) -> None:
        """Store the registered agents as definitions: what runs is what the database shows."""
        if not self.agents:
            return
        store = SqlDefinitionStore(runtime)
        # A script's own custom classes may live in __main__: it ran, so no import check.
        await store.put(captured_specs(self.agents), source="decorator", check_imports=False)
        current = await store.current(list(self.agents))
        self.definition_versions.update(
            {name: definition.agent_version_id for name, definition in current.items()}
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[AgentApp]:
        """Upstream's run, in a session: agents recorded as definitions, their histories
        restored from and stored in the session, every call logged as an execution, and
        upstream's events written to the event log."""
        async with await DatabaseRuntime.open(self.database_url) as runtime:
            await self.record_definitions(runtime)
            conversations = SqlConversationStore(runtime)
            await conversations.ensure_session(self.session_id, app_name=self.app.name)
            binding = ConversationBinding(conversations, self.session_id)
            executions = SqlExecutionStore(runtime)
            await interrupt_dead_workers(executions)
            prices = PriceBook(await SqlModelCatalog(runtime).list_models())
            events = SqlEventSink(runtime)
            await events.ensure_partitions()
            writer = EventWriter(events, spill_dir=spill_directory(self.database_url))
            await writer.start()
            session_token = run_context.current_session.set(self.session_id)
            # Initialise first (upstream's run() then skips it), so capture wraps the
            # transport upstream's logging configuration installs, and sees start-up events.
            await self.app.initialize()
            capturing = install_event_capture(writer, level=self._events_level())
            try:
                async with super().run() as app:
                    await binding.restore(app._agents)
                    RunRecorder(
                        executions, self.definition_versions, conversation=binding, prices=prices
                    ).track(app._agents)
                    yield app
            finally:
                uninstall_event_capture(capturing)
                run_context.current_session.reset(session_token)
                await writer.close()

    def _events_level(self) -> str:
        """`database.events_level` (default info): independent of the console's logger.level."""
        database = self.config.get("database") or {}
        return str(database.get("events_level") or "info")

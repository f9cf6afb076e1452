"""`mcp_agent.db.FastAgent`: upstream's FastAgent with the database as the source of truth.

Unchanged decorators and workflows run as with upstream; what differs is where things come
from and go to:
* settings (providers, models, MCP servers, logger, ...) come from the database, unless the
  program names a configuration file (see `FastAgent._load_config` for the precedence);
* the agents a run uses are recorded as definitions (upsert by name, a new version only when
  a definition changed), and stored definitions can be loaded without any Python;
* every path through upstream's `run()` (interactive, `--message`, `--prompt-file`,
  `--server`, `--quiet`) restores the session's histories, records each call as an execution
  and stores its turn, and writes upstream's events to the event log.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_agent.config as upstream_config
from mcp_agent.core.agent_app import AgentApp
from mcp_agent.core.exceptions import (
    ProviderKeyError,
    ServerConfigError,
    ServerInitializationError,
)
from mcp_agent.core.fastagent import FastAgent as UpstreamFastAgent
from sqlalchemy.exc import SQLAlchemyError

from mcp_agent.db import run_context
from mcp_agent.db.conversations.binding import ConversationBinding
from mcp_agent.db.conversations.sql import SqlConversationStore, make_session_id
from mcp_agent.db.definitions.loader import captured_specs, register_definitions
from mcp_agent.db.definitions.specs import AgentSpec
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.events.capture import EventWriter, spill_directory
from mcp_agent.db.events.shutdown import interrupt_on_sigterm, restore_sigterm
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.executions.tracking import interrupt_dead_workers
from mcp_agent.db.executions.usage import PriceBook
from mcp_agent.db.patches import event_transport
from mcp_agent.db.patches.agent_creation import on_agents_created
from mcp_agent.db.patches.secret_resolution import secret_resolution
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.build import build_settings
from mcp_agent.db.settings.document import DATABASE_SECTION, ConfigDocument
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.sync_bridge import run_blocking
from mcp_agent.db.turns.recorder import RunRecorder
from mcp_agent.db.turns.sql import SqlTurnStore
from mcp_agent.db.urls import redact_url, resolve_database_url

#: `settings_source` of a run whose settings came from the database.
SETTINGS_FROM_DATABASE = "database"


async def load_document(database_url: str) -> ConfigDocument:
    async with await DatabaseRuntime.open(database_url) as runtime:
        return await SqlSettingsStore(runtime).load_document()


def holds_no_settings(document: ConfigDocument) -> bool:
    return not (document.providers or document.servers or document.settings)


def _named_config_file(config_path: str) -> Path:
    """The file upstream's get_settings reads for an explicit path (a relative path that does
    not exist is looked up by its name in the working directory)."""
    path = Path(config_path)
    if not path.exists() and not path.is_absolute():
        path = Path.cwd() / path.name
    return path.resolve()


def _depending_on_unknown_servers(specs: dict[str, AgentSpec], known_servers: set[str]) -> set[str]:
    """Names of the specs that use a server not in `known_servers`, directly or through
    the agents they are built on."""
    excluded = {name for name, spec in specs.items() if set(spec.server_names()) - known_servers}
    grew = bool(excluded)
    while grew:
        grew = False
        for name, spec in specs.items():
            if name not in excluded and any(child in excluded for _, _, child in spec.links()):
                excluded.add(name)
                grew = True
    return excluded


class FastAgent(UpstreamFastAgent):
    """Upstream's FastAgent, configured from a database.

    Args:
        database_url: where the database is; default FAST_AGENT_DATABASE_URL, then
            ./fastagent.db. An empty database gets the current schema on first use; one at
            an older revision needs `fast-agent-db db upgrade`.
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
        #: Where this app's settings came from (set by _load_config): `database`, or
        #: `file PATH`; recorded on every execution of its runs.
        self.settings_source = SETTINGS_FROM_DATABASE
        #: agent name -> fa_agent_versions.agent_version_id of what this run uses.
        self.definition_versions: dict[str, int | None] = {}
        # The run's database runtime (engine and pool), opened by load_definitions or run and
        # kept for the run on the loop that opened it: one engine for a run's whole life.
        self._runtime: DatabaseRuntime | None = None
        self._runtime_loop: asyncio.AbstractEventLoop | None = None
        super().__init__(
            name,
            config_path=config_path,
            ignore_unknown_args=ignore_unknown_args,
            parse_cli_args=parse_cli_args,
        )

    def _load_config(self) -> None:
        """The run's settings, one precedence that keeps the database the source of truth
        and runs unchanged upstream programs:

        1. a configuration file the program names (`FastAgent(config_path=...)`, go's
           `--config-path`) is used for this run, as upstream would use it;
        2. otherwise the database's settings (no file is read);
        3. when the database holds no settings at all, the files upstream would discover
           (fastagent.config.yaml walking up from the working directory, and its secrets
           file), with a one-line notice that `fast-agent-db config import` stores them.

        Environment variables fill what the chosen source leaves unset, as upstream. Where the
        settings came from is `self.settings_source`, recorded on every execution of the run.
        """
        if self.config_path:
            self._load_config_files(_named_config_file(self.config_path))
            return
        document = run_blocking(load_document(self.database_url))
        if holds_no_settings(document):
            discovered = upstream_config.Settings.find_config()
            self._load_config_files(discovered.resolve() if discovered else None)
            if discovered is not None:
                print(
                    f"fast-agent-db: the database {redact_url(self.database_url)} holds no "
                    f"settings; this run uses {discovered} (store them there with: "
                    f"fast-agent-db config import {discovered})",
                    file=sys.stderr,
                )
            return
        settings = build_settings(document, database_url=self.database_url)
        # Upstream code that calls get_settings() later (usage display, global context)
        # must see the same settings, not a YAML file found by walking up from the cwd.
        upstream_config._settings = settings
        self.config = settings.model_dump()
        self.settings_source = SETTINGS_FROM_DATABASE

    def _load_config_files(self, config_file: Path | None) -> None:
        super()._load_config()
        database = self.config.get(DATABASE_SECTION)
        if isinstance(database, dict) and isinstance(database.get("url"), str):
            # A URL given in the file stays out of the settings upstream may log or show.
            self.config[DATABASE_SECTION] = {**database, "url": redact_url(database["url"])}
        self.settings_source = (
            f"file {config_file}" if config_file else "environment (no configuration file)"
        )

    def _handle_error(self, e: Exception, error_type: str | None = None) -> None:
        """Upstream's error report, pointing at the database when the settings came from it
        (upstream's own hints name fastagent.config.yaml / fastagent.secrets.yaml)."""
        hint = self._database_hint(e) if self.settings_source == SETTINGS_FROM_DATABASE else None
        if hint is None:
            super()._handle_error(e, error_type)
            return
        from mcp_agent.core.error_handling import handle_error

        title, advice = hint
        if isinstance(e, ServerInitializationError):
            e.message = e.message.replace("Check fastagent.config.yaml?", "").rstrip()
        handle_error(
            e,
            title,
            f"This run's settings come from the database {redact_url(self.database_url)}: "
            + advice,
        )

    @staticmethod
    def _database_hint(error: Exception) -> tuple[str, str] | None:
        if isinstance(error, ServerConfigError):
            return (
                "Server Configuration Error",
                "add the missing servers with `fast-agent-db servers add` "
                "(or `fast-agent-db config import FILE`).",
            )
        if isinstance(error, ProviderKeyError):
            return (
                "Provider Configuration Error",
                "store the API key as a reference with "
                "`fast-agent-db config set PROVIDER.api_key env:VARIABLE`, "
                "or set the provider's environment variable.",
            )
        if isinstance(error, ServerInitializationError):
            return (
                "MCP Server Startup Error",
                "check the server's stored settings with `fast-agent-db servers list`.",
            )
        return None

    async def _database(self) -> DatabaseRuntime:
        """The runtime of this app on the running loop, opened on first use."""
        loop = asyncio.get_running_loop()
        if self._runtime is None or self._runtime_loop is not loop:
            self._runtime = await DatabaseRuntime.open(self.database_url)
            self._runtime_loop = loop
        return self._runtime

    async def close_database(self) -> None:
        """Close the database runtime this app holds, if any (a run closes it itself)."""
        runtime, self._runtime, self._runtime_loop = self._runtime, None, None
        if runtime is not None:
            await runtime.close()

    async def load_definitions(self, *names: str) -> None:
        """Register stored definitions of `names` and of every agent they depend on.

        The database stays open for the `run()` that follows on the same loop (a run
        closes it); a caller that never runs can `await fast.close_database()`."""
        runtime = await self._database()
        definitions = await SqlDefinitionStore(runtime).current()
        known_servers = set((await SqlSettingsStore(runtime).load_document()).servers)
        self.definition_versions.update(
            register_definitions(self.agents, definitions, list(names), known_servers=known_servers)
        )

    async def record_definitions(self, runtime: DatabaseRuntime) -> None:
        """Store the registered agents as definitions: what runs is what the database shows.

        A definition's MCP servers are rows of the database's settings. When this run's
        settings came from a file that defines servers the database does not, the agents
        using them (and the workflows built on those agents) run unrecorded, as one notice
        says, rather than storing definitions that point at servers the database lacks.
        """
        if not self.agents:
            return
        specs = {spec.name: spec for spec in captured_specs(self.agents)}
        known_servers = set((await SqlSettingsStore(runtime).load_document()).servers)
        unrecorded = _depending_on_unknown_servers(specs, known_servers)
        if unrecorded and self.settings_source != SETTINGS_FROM_DATABASE:
            print(
                f"fast-agent-db: not recorded as definitions: {', '.join(sorted(unrecorded))} "
                f"(they use MCP servers that {self.settings_source} defines and the database "
                "does not; fast-agent-db config import stores them)",
                file=sys.stderr,
            )
        recordable = [spec for name, spec in specs.items() if name not in unrecorded]
        if not recordable:
            return
        store = SqlDefinitionStore(runtime)
        # A script's own custom classes may live in __main__ or inside a function: it ran,
        # so no import check (such a class is recorded as needing the script).
        await store.put(recordable, source="decorator", check_imports=False)
        current = await store.current([spec.name for spec in recordable])
        self.definition_versions.update(
            {name: definition.agent_version_id for name, definition in current.items()}
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[AgentApp]:
        """Upstream's run, in a session: agents recorded as definitions, their histories
        restored from and stored in the session, every call logged as an execution, and
        upstream's events written to the event log.

        Restoring and recording start as soon as upstream has created the agents, before
        upstream handles `--message`, `--prompt-file` or `--server` inside its run()."""
        runtime = await self._database()
        async with _closing(self.close_database):
            await self.record_definitions(runtime)
            conversations = SqlConversationStore(runtime)
            created_session = await conversations.ensure_session(
                self.session_id, app_name=self.app.name
            )
            binding = ConversationBinding(conversations, self.session_id)
            executions = SqlExecutionStore(runtime)
            await interrupt_dead_workers(executions)
            recorder = RunRecorder(
                SqlTurnStore(runtime),
                self.definition_versions,
                conversation=binding,
                prices=PriceBook(await SqlModelCatalog(runtime).list_models()),
                settings_source=self.settings_source,
            )

            async def restore_and_record(agents: dict[str, Any]) -> None:
                await binding.restore(agents)
                recorder.track(agents)

            events = SqlEventSink(runtime)
            await events.ensure_partitions()
            writer = EventWriter(events, spill_dir=spill_directory(self.database_url))
            await writer.start()
            session_token = run_context.current_session.set(self.session_id)
            self._announce_session()
            # Initialise first (upstream's run() then skips it), so capture wraps the
            # transport upstream's logging configuration installs, and sees start-up events.
            await self.app.initialize()
            capturing = event_transport.install(writer, level=self._events_level())
            # Until the writer has closed: SIGTERM takes the Ctrl-C way out, through `finally`.
            sigterm = interrupt_on_sigterm()
            try:
                with secret_resolution():
                    async with on_agents_created(restore_and_record), super().run() as app:
                        yield app
            finally:
                event_transport.uninstall(capturing)
                run_context.current_session.reset(session_token)
                try:
                    await writer.close()
                finally:
                    restore_sigterm(sigterm)
                if created_session:
                    await _discard_empty_session(conversations, self.session_id)

    def _announce_session(self) -> None:
        """One line on stderr naming the session, so the user can continue it; not in
        upstream's --quiet mode, whose output is the reply alone."""
        if getattr(self.args, "quiet", False):
            return
        print(
            f"fast-agent-db: session {self.session_id} (continue it with --session "
            f"{self.session_id})",
            file=sys.stderr,
        )

    def _events_level(self) -> str:
        """`database.events_level` (default info): independent of the console's logger.level."""
        database = self.config.get("database") or {}
        return str(database.get("events_level") or "info")


async def _discard_empty_session(conversations: SqlConversationStore, session_id: str) -> None:
    """A run that stored nothing (it failed before its first turn, or sent none) leaves no
    empty session behind. Best effort: the run's own outcome (an error on its way out) is
    what the user must see, not a second failure here."""
    try:
        await conversations.discard_if_empty(session_id)
    except (FastAgentDbError, SQLAlchemyError) as error:
        print(
            f"fast-agent-db: the empty session {session_id} could not be removed: {error}",
            file=sys.stderr,
        )


@asynccontextmanager
async def _closing(close: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Await `close` when the block ends, however it ends."""
    try:
        yield
    finally:
        await close()

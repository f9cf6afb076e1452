"""The bundle of stores the conformance suite runs on: every store protocol on one backend."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_agent.db.conversations.base import ConversationStore
from mcp_agent.db.conversations.in_memory import InMemoryConversationStore
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.definitions.base import DefinitionStore
from mcp_agent.db.definitions.in_memory import InMemoryDefinitionStore
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.events.base import EventRecord, EventSink
from mcp_agent.db.events.in_memory import InMemoryEventSink
from mcp_agent.db.events.queries import read_events
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.executions.base import ExecutionStore
from mcp_agent.db.executions.in_memory import InMemoryExecutionStore
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.runs.base import RunStore
from mcp_agent.db.runs.in_memory import InMemoryRunStore
from mcp_agent.db.runs.journal import InMemoryRunJournal, RunJournal, SqlRunJournal
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.base import SettingsStore
from mcp_agent.db.settings.in_memory import InMemorySettingsStore
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.turns.base import TurnStore
from mcp_agent.db.turns.in_memory import InMemoryTurnStore
from mcp_agent.db.turns.sql import SqlTurnStore
from mcp_agent.db.webhooks.base import WebhookStore
from mcp_agent.db.webhooks.in_memory import InMemoryWebhookStore
from mcp_agent.db.webhooks.sql import SqlWebhookStore


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store on one backend, sharing its state as the SQL stores share a database
    (the turns an end of a call stores are in `conversations`, its record in `executions`,
    the servers `settings` holds are the ones `definitions` accepts)."""

    backend: str
    settings: SettingsStore
    definitions: DefinitionStore
    conversations: ConversationStore
    turns: TurnStore
    executions: ExecutionStore
    events: EventSink
    webhooks: WebhookStore
    #: Its retries wait no backoff, so a test can claim a retried run at once.
    runs: RunStore
    #: Its writes (and the turn store's fenced ones) are fenced by `hold_run`'s leases.
    journal: RunJournal
    #: The database of the SQL stores; None in memory.
    runtime: DatabaseRuntime | None

    async def stored_events(self) -> list[EventRecord]:
        """Every stored event, in the order stored. Reading events back is not part of the
        sink's protocol (the CLI reads them with SQL), so each backend is read its own way."""
        if self.runtime is None:
            assert isinstance(self.events, InMemoryEventSink)
            return list(self.events.events)
        return [event for _event_id, event in await read_events(self.runtime, limit=1_000_000)]

    async def hold_run(self, run_id: str, lease_epoch: int, status: str = "running") -> None:
        """Make the run `status` at `lease_epoch`, as a claim (or an end) leaves it: the
        journal's tests need leases without the run store's claim order."""
        if self.runtime is None:
            assert isinstance(self.journal, InMemoryRunJournal)
            self.journal.hold(run_id, lease_epoch, status)
            return
        from tests.support.run_leases import hold_run_row

        await hold_run_row(self.runtime, run_id, lease_epoch, status)


def in_memory_stores() -> Stores:
    settings = InMemorySettingsStore()
    conversations = InMemoryConversationStore()
    journal = InMemoryRunJournal()
    turns = InMemoryTurnStore(conversations, journal=journal)
    definitions = InMemoryDefinitionStore(settings=settings)
    webhooks = InMemoryWebhookStore()
    return Stores(
        backend="memory",
        settings=settings,
        definitions=definitions,
        conversations=conversations,
        turns=turns,
        executions=InMemoryExecutionStore(turns),
        events=InMemoryEventSink(),
        webhooks=webhooks,
        runs=InMemoryRunStore(
            definitions=definitions,
            conversations=conversations,
            webhooks=webhooks,
            retry_backoff_s=0,
        ),
        journal=journal,
        runtime=None,
    )


def sql_stores(backend: str, runtime: DatabaseRuntime) -> Stores:
    return Stores(
        backend=backend,
        settings=SqlSettingsStore(runtime),
        definitions=SqlDefinitionStore(runtime),
        conversations=SqlConversationStore(runtime),
        turns=SqlTurnStore(runtime),
        executions=SqlExecutionStore(runtime),
        events=SqlEventSink(runtime),
        webhooks=SqlWebhookStore(runtime),
        runs=SqlRunStore(runtime, retry_backoff_s=0),
        journal=SqlRunJournal(runtime),
        runtime=runtime,
    )

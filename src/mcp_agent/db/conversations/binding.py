"""Keeping a running agent's histories in a session.

Upstream keeps two histories per LLM (see UPSTREAM_SYNC.md): the provider-agnostic transcript
`_message_history` and the provider-native `history` (a SimpleMemory). At the start of a run
both are restored from the session; after each completed call of an agent, what the call
added to both is appended as one turn, in the transaction that records the call's end. A call
that fails, or whose turn cannot be stored, leaves neither the database nor the in-memory
histories changed, so a tool call without its result never reaches a provider after a crash
or an error.
"""

from __future__ import annotations

from typing import Any

from mcp_agent.db.conversations.base import ConversationStore, NewMessage, PendingTurn
from mcp_agent.db.patches import llm_histories
from mcp_agent.db.patches.llm_histories import HistorySnapshot


class ConversationBinding:
    def __init__(self, store: ConversationStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    async def restore(self, agents: dict[str, Any]) -> None:
        """Load each agent's stored history into its LLM."""
        for name, agent in agents.items():
            if llm_histories.llm_of(agent) is None:
                continue
            stored = await self.store.load(self.session_id, name)
            if not stored:
                continue
            llm_histories.replace(
                agent,
                [message.content for message in stored],
                [item for message in stored for item in (message.provider_messages or [])],
            )

    def snapshot(self, agent: Any) -> HistorySnapshot | None:
        return llm_histories.snapshot(agent)

    def roll_back(self, agent: Any, snapshot: HistorySnapshot | None) -> None:
        if snapshot is not None:
            llm_histories.replace(agent, snapshot.transcript, snapshot.provider)

    def pending_turn(
        self, agent_name: str, agent: Any, snapshot: HistorySnapshot | None, execution_id: str
    ) -> PendingTurn | None:
        """What the call added to the agent's histories since `snapshot`, as one turn.

        No I/O: the execution store appends it in the transaction that records the call's end.
        """
        if snapshot is None:
            return None
        added = llm_histories.added_since(agent, snapshot)
        if not added.transcript:
            return None
        provider, model = llm_histories.provider_and_model(agent)
        last = len(added.transcript) - 1
        return PendingTurn(
            self.session_id,
            agent_name,
            [
                NewMessage(
                    content=message,
                    # The turn's provider-native messages ride on its last row.
                    provider_messages=added.provider if index == last and added.provider else None,
                    provider=provider,
                    model=model,
                    execution_id=execution_id,
                )
                for index, message in enumerate(added.transcript)
            ],
        )

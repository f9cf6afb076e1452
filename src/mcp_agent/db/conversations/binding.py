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

from dataclasses import dataclass
from typing import Any

from mcp_agent.db.conversations.base import ConversationStore, NewMessage, PendingTurn


@dataclass(frozen=True, slots=True)
class HistorySnapshot:
    transcript: list[Any]
    provider: list[Any]


def _llm(agent: Any) -> Any | None:
    return getattr(agent, "_llm", None)


class ConversationBinding:
    def __init__(self, store: ConversationStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    async def restore(self, agents: dict[str, Any]) -> None:
        """Load each agent's stored history into its LLM."""
        for name, agent in agents.items():
            llm = _llm(agent)
            if llm is None:
                continue
            stored = await self.store.load(self.session_id, name)
            if not stored:
                continue
            llm._message_history = [message.content for message in stored]
            llm.history.set(
                [item for message in stored for item in (message.provider_messages or [])]
            )

    def snapshot(self, agent: Any) -> HistorySnapshot | None:
        llm = _llm(agent)
        if llm is None:
            return None
        return HistorySnapshot(list(llm._message_history), list(llm.history.history))

    def roll_back(self, agent: Any, snapshot: HistorySnapshot | None) -> None:
        llm = _llm(agent)
        if llm is None or snapshot is None:
            return
        llm._message_history = list(snapshot.transcript)
        llm.history.set(list(snapshot.provider))

    def pending_turn(
        self, agent_name: str, agent: Any, snapshot: HistorySnapshot | None, execution_id: str
    ) -> PendingTurn | None:
        """What the call added to the agent's histories since `snapshot`, as one turn.

        No I/O: the execution store appends it in the transaction that records the call's end.
        """
        llm = _llm(agent)
        if llm is None or snapshot is None:
            return None
        transcript = llm._message_history[len(snapshot.transcript) :]
        if not transcript:
            return None
        provider_items = list(llm.history.history)[len(snapshot.provider) :]
        provider = getattr(getattr(llm, "provider", None), "value", None)
        model = getattr(getattr(llm, "default_request_params", None), "model", None)
        last = len(transcript) - 1
        return PendingTurn(
            self.session_id,
            agent_name,
            [
                NewMessage(
                    content=message,
                    # The turn's provider-native messages ride on its last row.
                    provider_messages=provider_items if index == last and provider_items else None,
                    provider=provider,
                    model=model,
                    execution_id=execution_id,
                )
                for index, message in enumerate(transcript)
            ],
        )

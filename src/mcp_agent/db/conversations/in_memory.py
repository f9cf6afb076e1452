"""In-memory conversation store: the reference implementation and the test double."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_agent.db.conversations.base import NewMessage, StoredMessage
from mcp_agent.db.errors import SessionError
from mcp_agent.db.models.types import utc_now


class InMemoryConversationStore:
    def __init__(self) -> None:
        self._sessions: set[str] = set()
        self._messages: dict[tuple[str, str], list[StoredMessage]] = {}
        self._next_id = 1

    async def ensure_session(self, session_id: str, *, app_name: str | None = None) -> bool:
        created = session_id not in self._sessions
        self._sessions.add(session_id)
        return created

    async def discard_if_empty(self, session_id: str) -> bool:
        if session_id not in self._sessions or any(
            stored_session == session_id and history
            for (stored_session, _agent), history in self._messages.items()
        ):
            return False
        self._sessions.discard(session_id)
        return True

    async def load(self, session_id: str, agent_name: str) -> list[StoredMessage]:
        return list(self._messages.get((session_id, agent_name), []))

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        if session_id not in self._sessions:
            raise SessionError(f"no session {session_id!r}")
        history = self._messages.setdefault((session_id, agent_name), [])
        sequences = []
        for message in messages:
            sequence = len(history) + 1
            history.append(
                StoredMessage(
                    message_id=self._next_id,
                    session_id=session_id,
                    agent_name=agent_name,
                    sequence=sequence,
                    content=message.content,
                    provider_messages=message.provider_messages,
                    provider=message.provider,
                    model=message.model,
                    created_at=utc_now(),
                )
            )
            self._next_id += 1
            sequences.append(sequence)
        return sequences

"""In-memory conversation store: the reference implementation and the test double.

Messages are kept in the JSON form the SQL stores write (`codec`), and decoded on load: what
comes back is what a database would give back (SDK objects rebuilt, cache markers dropped),
and a message that a database could not store fails here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcp_agent.db.conversations.base import NewMessage, StoredMessage
from mcp_agent.db.conversations.codec import (
    decode_multipart,
    decode_provider,
    encode_multipart,
    encode_provider,
    escape_unstorable,
    unescape_unstorable,
)
from mcp_agent.db.errors import SessionError
from mcp_agent.db.models.types import utc_now


@dataclass(frozen=True, slots=True)
class _EncodedMessage:
    """A message as a row holds it."""

    message_id: int
    sequence: int
    content: dict[str, Any]
    provider_messages: Any
    provider: str | None
    model: str | None
    created_at: datetime


class InMemoryConversationStore:
    def __init__(self) -> None:
        self._sessions: set[str] = set()
        self._messages: dict[tuple[str, str], list[_EncodedMessage]] = {}
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
        return [
            StoredMessage(
                message_id=encoded.message_id,
                session_id=session_id,
                agent_name=agent_name,
                sequence=encoded.sequence,
                content=decode_multipart(encoded.content),
                provider_messages=(
                    None
                    if encoded.provider_messages is None
                    else decode_provider(unescape_unstorable(encoded.provider_messages))
                ),
                provider=encoded.provider,
                model=encoded.model,
                created_at=encoded.created_at,
            )
            for encoded in self._messages.get((session_id, agent_name), [])
        ]

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        if not messages:
            return []
        if session_id not in self._sessions:
            raise SessionError(f"no session {session_id!r}")
        # Encoded before anything is stored: a message that cannot be encoded stores none.
        encoded = [
            (
                encode_multipart(message.content),
                None
                if message.provider_messages is None
                else escape_unstorable(encode_provider(message.provider_messages)),
            )
            for message in messages
        ]
        history = self._messages.setdefault((session_id, agent_name), [])
        sequences = []
        for message, (content, provider_messages) in zip(messages, encoded, strict=True):
            sequence = len(history) + 1
            history.append(
                _EncodedMessage(
                    message_id=self._next_id,
                    sequence=sequence,
                    content=content,
                    provider_messages=provider_messages,
                    provider=message.provider,
                    model=message.model,
                    created_at=utc_now(),
                )
            )
            self._next_id += 1
            sequences.append(sequence)
        return sequences

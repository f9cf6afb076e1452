"""The conversation store seam: each agent's history in a session, one row per message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # Only annotations use it: importing upstream's message types (all of mcp.types) is
    # left to the code that builds or decodes messages.
    from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: the transcript entry and the provider-native messages it added."""

    content: PromptMessageMultipart
    #: Provider-native history items (dicts or SDK objects); None when the model keeps none.
    provider_messages: list[Any] | None = None
    provider: str | None = None
    model: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingTurn:
    """A completed call's turn, to be appended in the transaction that records the call's end."""

    session_id: str
    agent_name: str
    messages: Sequence[NewMessage]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_id: int
    session_id: str
    agent_name: str
    sequence: int
    content: PromptMessageMultipart
    provider_messages: list[Any] | None
    provider: str | None
    model: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    created_at: datetime
    updated_at: datetime
    parent_session_id: str | None
    branch_point_message_id: int | None
    #: agent name -> number of messages it sees (inherited ones included)
    message_counts: dict[str, int] = field(default_factory=dict)


class ConversationStore(Protocol):
    async def ensure_session(self, session_id: str, *, app_name: str | None = None) -> bool:
        """Create the session if it does not exist (idempotent, safe under concurrency);
        True when this call created it."""
        ...

    async def discard_if_empty(self, session_id: str) -> bool:
        """Delete the session when nothing was stored in it (a run that failed before its
        first turn, or sent none); True when it was deleted."""
        ...

    async def load(self, session_id: str, agent_name: str) -> list[StoredMessage]:
        """The agent's history in the session, oldest first, a branch's inherited part included."""
        ...

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        """Append one turn atomically; returns the sequences it got.

        Sequences are strictly increasing and gap-free per session and agent. A second
        writer to the same session waits for the first to commit, then appends after it.
        """
        ...

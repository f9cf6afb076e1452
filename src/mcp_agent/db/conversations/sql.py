"""Conversations in fa_sessions and fa_messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_agent.db.conversations.base import NewMessage, SessionSummary, StoredMessage
from mcp_agent.db.conversations.codec import (
    decode_multipart,
    decode_provider,
    encode_multipart,
    encode_provider,
    escape_nul,
    unescape_nul,
)
from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.models import MessageRow, SessionRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime


class SessionError(FastAgentDbError):
    """A session operation that cannot be done; the message says why."""


def make_session_id() -> str:
    """A new session id: 16 hex digits, short enough to type when resuming."""
    return uuid.uuid4().hex[:16]


def _stored(row: MessageRow) -> StoredMessage:
    return StoredMessage(
        message_id=row.message_id,
        session_id=row.session_id,
        agent_name=row.agent_name,
        sequence=row.sequence,
        content=decode_multipart(row.content),
        provider_messages=(
            None
            if row.provider_messages is None
            else decode_provider(unescape_nul(row.provider_messages))
        ),
        provider=row.provider,
        model=row.model,
        created_at=row.created_at,
    )


async def _lineage(session: AsyncSession, session_id: str) -> list[tuple[str, int | None]]:
    """(session_id, cut) from the session up through its branch ancestors; cut is the last
    message_id of that ancestor the branch sees (None for the session itself)."""
    lineage: list[tuple[str, int | None]] = []
    current: str | None = session_id
    cut: int | None = None
    while current is not None:
        row = await session.get(SessionRow, current)
        if row is None:
            if not lineage:
                return []
            raise SessionError(f"session {current!r}, an ancestor of {session_id!r}, is missing")
        lineage.append((current, cut))
        if row.branch_point_message_id is not None:
            cut = (
                row.branch_point_message_id
                if cut is None
                else min(cut, row.branch_point_message_id)
            )
        current = row.parent_session_id
    return lineage


def _visible(lineage: list[tuple[str, int | None]]):  # noqa: ANN202 - a SQL expression
    return or_(
        *(
            MessageRow.session_id == session_id
            if cut is None
            else and_(MessageRow.session_id == session_id, MessageRow.message_id <= cut)
            for session_id, cut in lineage
        )
    )


class SqlConversationStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def ensure_session(self, session_id: str, *, app_name: str | None = None) -> None:
        async with self._runtime.sessions() as session:
            if await session.get(SessionRow, session_id) is not None:
                return
        try:
            async with self._runtime.sessions.begin() as session:
                session.add(SessionRow(session_id=session_id, app_name=app_name))
        except IntegrityError:
            pass  # another process created it first

    async def load(self, session_id: str, agent_name: str) -> list[StoredMessage]:
        async with self._runtime.sessions() as session:
            lineage = await _lineage(session, session_id)
            if not lineage:
                return []
            rows = await session.scalars(
                select(MessageRow)
                .where(MessageRow.agent_name == agent_name, _visible(lineage))
                .order_by(MessageRow.sequence)
            )
            return [_stored(row) for row in rows]

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        if not messages:
            return []
        async with self._runtime.sessions.begin() as session:
            # Taking the session row's write lock first serialises appenders to a session on
            # both backends (a row lock on PostgreSQL, the database write lock on SQLite).
            locked = await session.execute(
                update(SessionRow)
                .where(SessionRow.session_id == session_id)
                .values(updated_at=utc_now())
            )
            if locked.rowcount == 0:
                raise SessionError(f"no session {session_id!r}")
            lineage = await _lineage(session, session_id)
            last = await session.scalar(
                select(func.max(MessageRow.sequence)).where(
                    MessageRow.agent_name == agent_name, _visible(lineage)
                )
            )
            sequences = list(range((last or 0) + 1, (last or 0) + 1 + len(messages)))
            session.add_all(
                MessageRow(
                    session_id=session_id,
                    agent_name=agent_name,
                    sequence=sequence,
                    role=message.content.role,
                    content=encode_multipart(message.content),
                    provider=message.provider,
                    provider_messages=(
                        None
                        if message.provider_messages is None
                        else escape_nul(encode_provider(message.provider_messages))
                    ),
                    model=message.model,
                    execution_id=message.execution_id,
                )
                for sequence, message in zip(sequences, messages, strict=True)
            )
            return sequences

    # -- administration (CLI and API), beyond what a running agent needs -----------------

    async def list_sessions(self, *, limit: int = 100) -> list[SessionSummary]:
        async with self._runtime.sessions() as session:
            rows = list(
                await session.scalars(
                    select(SessionRow).order_by(SessionRow.updated_at.desc()).limit(limit)
                )
            )
            counts: dict[str, dict[str, int]] = {}
            if rows:
                for session_id, agent, count in await session.execute(
                    select(MessageRow.session_id, MessageRow.agent_name, func.count())
                    .where(MessageRow.session_id.in_([row.session_id for row in rows]))
                    .group_by(MessageRow.session_id, MessageRow.agent_name)
                ):
                    counts.setdefault(session_id, {})[agent] = count
        return [
            SessionSummary(
                session_id=row.session_id,
                created_at=row.created_at,
                updated_at=row.updated_at,
                parent_session_id=row.parent_session_id,
                branch_point_message_id=row.branch_point_message_id,
                message_counts=counts.get(row.session_id, {}),
            )
            for row in rows
        ]

    async def agents(self, session_id: str) -> list[str]:
        """Agents with messages visible in the session."""
        async with self._runtime.sessions() as session:
            lineage = await _lineage(session, session_id)
            if not lineage:
                raise SessionError(f"no session {session_id!r}")
            names = await session.scalars(
                select(MessageRow.agent_name).where(_visible(lineage)).distinct()
            )
            return sorted(names)

    async def resolve_agent(self, session_id: str, agent_name: str | None) -> str:
        """`agent_name`, or the session's only agent when none is named."""
        if agent_name is not None:
            return agent_name
        agents = await self.agents(session_id)
        if len(agents) != 1:
            raise SessionError(
                f"session {session_id!r} has agents {', '.join(agents) or 'none'}: "
                "name one with --agent"
            )
        return agents[0]

    async def fork(
        self,
        session_id: str,
        *,
        at_sequence: int,
        agent_name: str | None = None,
        new_session_id: str | None = None,
    ) -> str:
        """A new session sharing the history up to message `at_sequence` of `agent_name`
        (every agent's messages up to that point), without copying rows."""
        agent_name = await self.resolve_agent(session_id, agent_name)
        history = await self.load(session_id, agent_name)
        point = next((m for m in history if m.sequence == at_sequence), None)
        if point is None:
            last = history[-1].sequence if history else 0
            raise SessionError(
                f"agent {agent_name!r} in session {session_id!r} has no message {at_sequence} "
                f"(it has 1..{last})"
            )
        child = new_session_id or make_session_id()
        async with self._runtime.sessions.begin() as session:
            if await session.get(SessionRow, child) is not None:
                raise SessionError(f"session {child!r} exists already")
            session.add(
                SessionRow(
                    session_id=child,
                    parent_session_id=session_id,
                    branch_point_message_id=point.message_id,
                )
            )
        return child

    async def delete(self, session_id: str) -> int:
        """Delete a session and its messages; refused while branches depend on it."""
        async with self._runtime.sessions.begin() as session:
            if await session.get(SessionRow, session_id) is None:
                raise SessionError(f"no session {session_id!r}")
            branches = list(
                await session.scalars(
                    select(SessionRow.session_id).where(SessionRow.parent_session_id == session_id)
                )
            )
            if branches:
                raise SessionError(
                    f"session {session_id!r} cannot be deleted: branches share its history: "
                    + ", ".join(sorted(branches))
                )
            removed = await session.execute(
                delete(MessageRow).where(MessageRow.session_id == session_id)
            )
            await session.execute(delete(SessionRow).where(SessionRow.session_id == session_id))
            return removed.rowcount or 0

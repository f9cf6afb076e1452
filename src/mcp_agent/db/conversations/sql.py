"""Conversations in fa_sessions and fa_messages."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Row, Select, Text, and_, cast, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.expression import type_coerce

from mcp_agent.db.conversations.base import NewMessage, SessionSummary, StoredMessage
from mcp_agent.db.conversations.codec import (
    decode_multipart_json,
    decode_provider_json,
    encode_multipart,
    encode_provider,
    escape_nul,
)
from mcp_agent.db.errors import SessionError  # noqa: F401 - defined in errors, imported from here too
from mcp_agent.db.models import MessageRow, SessionRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime


def make_session_id() -> str:
    """A new session id: 16 hex digits, short enough to type when resuming."""
    return uuid.uuid4().hex[:16]


def _json_text(column: Any, dialect: str) -> Any:
    """The column's stored JSON as text, so decoding can skip building Python dicts."""
    if dialect == "postgresql":
        return cast(column, Text)
    return type_coerce(column, Text)  # SQLite stores JSON as text already


def _history_columns(dialect: str) -> tuple[Any, ...]:
    return (
        MessageRow.message_id,
        MessageRow.session_id,
        MessageRow.agent_name,
        MessageRow.sequence,
        _json_text(MessageRow.content, dialect).label("content"),
        _json_text(MessageRow.provider_messages, dialect).label("provider_messages"),
        MessageRow.provider,
        MessageRow.model,
        MessageRow.created_at,
    )


def _stored(row: Row[Any]) -> StoredMessage:
    # Unpacked once: attribute access by name on a Row costs more than the decoding itself.
    message_id, session_id, agent_name, sequence, content, provider_messages, *rest = row
    provider, model, created_at = rest
    return StoredMessage(
        message_id=message_id,
        session_id=session_id,
        agent_name=agent_name,
        sequence=sequence,
        content=decode_multipart_json(content),
        provider_messages=decode_provider_json(provider_messages),
        provider=provider,
        model=model,
        created_at=created_at,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a long history is decoded.

    Decoding allocates many objects and no cycles; with the collector on, the full collections
    it triggers scan the whole (large, in an agent process) heap again and again, which made a
    10,000-message load 2-3x slower. The loop runs without awaiting, so nothing else runs
    while the collector is paused; it is resumed after, as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: (session_id, cut) from a session up through its branch ancestors; cut is the last
#: message_id of that ancestor the branch sees (None for the session itself).
Lineage = list[tuple[str, int | None]]


async def _lineage(
    executor: AsyncSession | AsyncConnection, session_id: str, *, lock: bool = False
) -> Lineage:
    """The session's lineage; with `lock`, the session row's write lock is taken first.

    Locking is an UPDATE (not SELECT ... FOR UPDATE, which SQLite lacks): it serialises
    appenders to a session on both backends (a row lock on PostgreSQL, the database write lock
    on SQLite), and its RETURNING gives the first step of the lineage in the same round trip.
    """
    lineage: Lineage = []
    current: str | None = session_id
    cut: int | None = None
    while current is not None:
        step: Select[Any] | ReturningUpdate[Any]
        if lock and current == session_id:
            step = (
                update(SessionRow)
                .where(SessionRow.session_id == current)
                .values(updated_at=utc_now())
                .returning(SessionRow.parent_session_id, SessionRow.branch_point_message_id)
            )
        else:
            step = select(SessionRow.parent_session_id, SessionRow.branch_point_message_id).where(
                SessionRow.session_id == current
            )
        row = (await executor.execute(step)).first()
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


def _visible(lineage: Lineage):  # noqa: ANN202 - a SQL expression
    return or_(
        *(
            MessageRow.session_id == session_id
            if cut is None
            else and_(MessageRow.session_id == session_id, MessageRow.message_id <= cut)
            for session_id, cut in lineage
        )
    )


async def append_messages(
    connection: AsyncConnection, session_id: str, agent_name: str, messages: Sequence[NewMessage]
) -> list[int]:
    """Append one turn inside the caller's transaction (see `ConversationStore.append`).

    Also used by the execution store, so that a call's end and its turn commit together.
    """
    if not messages:
        return []
    lineage = await _lineage(connection, session_id, lock=True)
    if not lineage:
        raise SessionError(f"no session {session_id!r}")
    last = await connection.scalar(
        select(func.max(MessageRow.sequence)).where(
            MessageRow.agent_name == agent_name, _visible(lineage)
        )
    )
    first = (last or 0) + 1
    sequences = list(range(first, first + len(messages)))
    await connection.execute(
        insert(MessageRow),
        [
            {
                "session_id": session_id,
                "agent_name": agent_name,
                "sequence": sequence,
                "role": message.content.role,
                "content": encode_multipart(message.content),
                "provider": message.provider,
                "provider_messages": (
                    None
                    if message.provider_messages is None
                    else escape_nul(encode_provider(message.provider_messages))
                ),
                "model": message.model,
                "execution_id": message.execution_id,
            }
            for sequence, message in zip(sequences, messages, strict=True)
        ],
    )
    return sequences


class SqlConversationStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def ensure_session(self, session_id: str, *, app_name: str | None = None) -> bool:
        """Create the session unless it exists; True when this call created it."""
        async with self._runtime.sessions() as session:
            if await session.get(SessionRow, session_id) is not None:
                return False
        try:
            async with self._runtime.sessions.begin() as session:
                session.add(SessionRow(session_id=session_id, app_name=app_name))
        except IntegrityError:
            return False  # another process created it first
        return True

    async def discard_if_empty(self, session_id: str) -> bool:
        """Delete the session if nothing was stored in it: no message, no branch, and no
        execution still running in it (another process may be mid-turn). One statement, so
        a message stored meanwhile keeps it. True when it was deleted."""
        from mcp_agent.db.models.executions import ExecutionRow

        async with self._runtime.sessions.begin() as session:
            deleted = await session.execute(
                delete(SessionRow).where(
                    SessionRow.session_id == session_id,
                    ~select(MessageRow.message_id)
                    .where(MessageRow.session_id == session_id)
                    .exists(),
                    ~select(SessionRow.session_id)
                    .where(SessionRow.parent_session_id == session_id)
                    .correlate(None)
                    .exists(),
                    ~select(ExecutionRow.execution_id)
                    .where(ExecutionRow.session_id == session_id, ExecutionRow.status == "running")
                    .exists(),
                )
            )
            return bool(deleted.rowcount)

    async def load(self, session_id: str, agent_name: str) -> list[StoredMessage]:
        # Core, not ORM entities: a long session loads without an identity map of rows.
        async with self._runtime.engine.connect() as connection:
            lineage = await _lineage(connection, session_id)
            if not lineage:
                return []
            rows = (
                await connection.execute(
                    select(*_history_columns(self._runtime.dialect))
                    .where(MessageRow.agent_name == agent_name, _visible(lineage))
                    .order_by(MessageRow.sequence)
                )
            ).all()
        with _collector_paused():
            return [_stored(row) for row in rows]

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        if not messages:
            return []
        async with self._runtime.engine.begin() as connection:
            return await append_messages(connection, session_id, agent_name, messages)

    # -- administration (CLI and API), beyond what a running agent needs -----------------

    async def list_sessions(self, *, limit: int = 100) -> list[SessionSummary]:
        return await self._summaries(
            select(SessionRow).order_by(SessionRow.updated_at.desc()).limit(limit)
        )

    async def summary(self, session_id: str) -> SessionSummary:
        """One session with its message counts by agent (its own rows, not its ancestors')."""
        found = await self._summaries(select(SessionRow).where(SessionRow.session_id == session_id))
        if not found:
            raise SessionError(f"no session {session_id!r}")
        return found[0]

    async def _summaries(self, query: Select[tuple[SessionRow]]) -> list[SessionSummary]:
        async with self._runtime.sessions() as session:
            rows = list(await session.scalars(query))
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
        """`agent_name` (which must have messages in the session), or the session's only
        agent when none is named."""
        agents = await self.agents(session_id)
        if agent_name is not None:
            if agent_name not in agents:
                raise SessionError(
                    f"agent {agent_name!r} has no messages in session {session_id!r} "
                    f"(its agents: {', '.join(agents) or 'none'})"
                )
            return agent_name
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

    async def delete(self, session_id: str, *, apply: bool = True) -> int:
        """Delete a session and its messages; refused while branches depend on it. Returns
        how many messages went; with `apply=False` only checks and counts."""
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
            if not apply:
                return int(
                    await session.scalar(
                        select(func.count()).where(MessageRow.session_id == session_id)
                    )
                    or 0
                )
            removed = await session.execute(
                delete(MessageRow).where(MessageRow.session_id == session_id)
            )
            await session.execute(delete(SessionRow).where(SessionRow.session_id == session_id))
            return removed.rowcount or 0

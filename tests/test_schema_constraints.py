"""Schema v1 enforces what it promises, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mcp_agent.db.models import (
    AgentRow,
    AgentStateRow,
    AgentVersionRow,
    EventRow,
    McpServerRow,
    MessageRow,
    SessionRow,
)
from mcp_agent.db.runtime import DatabaseRuntime


async def _add_session(runtime: DatabaseRuntime, session_id: str = "s1") -> None:
    async with runtime.sessions.begin() as session:
        session.add(SessionRow(session_id=session_id))


def _message(sequence: int, **overrides) -> MessageRow:
    values = dict(
        session_id="s1",
        agent_name="a",
        sequence=sequence,
        role="user",
        content={"role": "user", "content": [{"type": "text", "text": "héllo ✓"}]},
    )
    values.update(overrides)
    return MessageRow(**values)


async def test_message_sequence_is_unique_per_session_and_agent(runtime: DatabaseRuntime) -> None:
    await _add_session(runtime)
    async with runtime.sessions.begin() as session:
        session.add_all([_message(1), _message(1, agent_name="b")])
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(_message(1))


async def test_foreign_keys_and_checks_are_enforced(runtime: DatabaseRuntime) -> None:
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(_message(1, session_id="no-such-session"))
    await _add_session(runtime)
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(_message(0))
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(McpServerRow(name="x", transport="carrier-pigeon"))


async def test_deleting_a_session_deletes_its_messages(runtime: DatabaseRuntime) -> None:
    await _add_session(runtime)
    async with runtime.sessions.begin() as session:
        session.add(_message(1))
    async with runtime.sessions.begin() as session:
        await session.delete(await session.get(SessionRow, "s1"))
    async with runtime.sessions() as session:
        assert (await session.scalars(select(MessageRow))).all() == []


async def test_json_and_utc_timestamps_round_trip(runtime: DatabaseRuntime) -> None:
    occurred = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    data = {"nested": {"list": [1, 2.5, None, True], "text": "ünïcode 🚀"}}
    async with runtime.sessions.begin() as session:
        session.add(
            EventRow(occurred_at=occurred, level="info", namespace="n", message="m", data=data)
        )
    async with runtime.sessions() as session:
        row = (await session.scalars(select(EventRow))).one()
    assert row.data == data
    assert row.occurred_at == occurred
    assert row.occurred_at.tzinfo is not None
    assert row.occurred_at.utcoffset() == timedelta(0)


async def test_naive_timestamps_are_refused(runtime: DatabaseRuntime) -> None:
    with pytest.raises(Exception, match="timezone-aware"):
        async with runtime.sessions.begin() as session:
            session.add(
                EventRow(occurred_at=datetime(2026, 1, 1), level="info", namespace="n", message="m")
            )


async def test_agent_state_keys_are_unique_per_scope(runtime: DatabaseRuntime) -> None:
    await _add_session(runtime)
    async with runtime.sessions.begin() as session:
        session.add_all(
            [
                AgentStateRow(agent_name="a", session_id=None, state_key="k", value=1),
                AgentStateRow(agent_name="a", session_id="s1", state_key="k", value=2),
            ]
        )
    for session_id in (None, "s1"):
        with pytest.raises(IntegrityError):
            async with runtime.sessions.begin() as session:
                session.add(
                    AgentStateRow(agent_name="a", session_id=session_id, state_key="k", value=3)
                )


async def test_agent_versions_are_numbered_per_agent(runtime: DatabaseRuntime) -> None:
    async with runtime.sessions.begin() as session:
        agent = AgentRow(name="writer")
        session.add(agent)
        await session.flush()
        version = AgentVersionRow(
            agent_id=agent.agent_id, version=1, agent_type="agent", content_hash="0" * 64
        )
        session.add(version)
        await session.flush()
        agent.current_version_id = version.agent_version_id
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(
                AgentVersionRow(
                    agent_id=agent.agent_id, version=1, agent_type="agent", content_hash="1" * 64
                )
            )
    with pytest.raises(IntegrityError):
        async with runtime.sessions.begin() as session:
            session.add(
                AgentVersionRow(
                    agent_id=agent.agent_id, version=2, agent_type="team", content_hash="1" * 64
                )
            )
    async with runtime.sessions() as session:
        stored = await session.get(AgentRow, agent.agent_id)
        assert stored is not None and stored.current_version_id == version.agent_version_id
        assert stored.created_at.tzinfo == UTC

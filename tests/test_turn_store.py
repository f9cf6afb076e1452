"""The SQL turn store beyond what every turn store does (tests/conformance/test_turns.py): a
branch continuing after its branch point (branches are the SQL conversation store's), a
database that stops answering, and the write pool's size."""

from __future__ import annotations

import asyncio

import pytest
from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.turns.base import CallEnd
from mcp_agent.db.turns.sql import SqlTurnStore


@pytest.fixture
async def turns_and_conversations(
    runtime: DatabaseRuntime,
) -> tuple[SqlTurnStore, SqlConversationStore]:
    return SqlTurnStore(runtime), SqlConversationStore(runtime)


def _postgres_database_url(request: pytest.FixtureRequest) -> str:
    databases = request.getfixturevalue("postgres_databases")
    name = databases.create(template=request.getfixturevalue("postgres_template"))
    request.addfinalizer(lambda: databases.drop(name))
    return databases.url(name)


def start(execution_id: str, session_id: str | None = "s") -> ExecutionStart:
    return ExecutionStart(
        execution_id=execution_id,
        parent_execution_id=None,
        agent_name="agent",
        agent_version_id=None,
        operation="generate",
        started_at=utc_now(),
        worker_id="w",
        session_id=session_id,
    )


def turn(*texts: str, session_id: str = "s") -> PendingTurn:
    return PendingTurn(
        session_id,
        "agent",
        [
            NewMessage(
                Prompt.user(text) if index % 2 == 0 else Prompt.assistant(text),
                provider_messages=[{"role": "assistant", "content": text}] if index % 2 else None,
                provider="openai",
                model="gpt-test",
            )
            for index, text in enumerate(texts)
        ],
    )


async def test_a_branch_continues_after_its_branch_point(
    turns_and_conversations: tuple[SqlTurnStore, SqlConversationStore],
) -> None:
    turns, store = turns_and_conversations
    await store.ensure_session("s")
    await turns.start_call(start("e1"))
    await turns.end_call(CallEnd("e1", "completed", utc_now(), turn=turn("1", "2")))
    await turns.start_call(start("e2"))
    await turns.end_call(CallEnd("e2", "completed", utc_now(), turn=turn("3", "4")))
    child = await store.fork("s", at_sequence=2, agent_name="agent", new_session_id="child")
    await turns.start_call(start("e3", session_id=child))
    assert await turns.end_call(
        CallEnd("e3", "completed", utc_now(), turn=turn("3b", "4b", session_id=child))
    ) == [3, 4]
    assert [m.content.all_text() for m in await store.load(child, "agent")] == [
        "1",
        "2",
        "3b",
        "4b",
    ]


def _refuse_connections(admin_url: str, database: str, refused: bool) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(not refused).lower()}'
        )
        if refused:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )


@pytest.mark.postgresql
async def test_a_database_that_stops_answering_fails_the_start_and_the_pool_recovers(
    request: pytest.FixtureRequest,
) -> None:
    """The write pool's connections die with the server's backends: the next start fails
    (before a model would be asked) with the driver's error as SQLAlchemy's, and once the
    database answers again the pool replaces them and calls are recorded again."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    url = _postgres_database_url(request)
    databases = request.getfixturevalue("postgres_databases")
    admin = make_url(databases.server_url).set(drivername="postgresql")
    admin_url = admin.render_as_string(hide_password=False)
    database = str(make_url(url).database)
    async with await DatabaseRuntime.open(url) as runtime:
        turns = SqlTurnStore(runtime)
        await SqlConversationStore(runtime).ensure_session("s")
        await turns.start_call(start("before"))
        await asyncio.to_thread(_refuse_connections, admin_url, database, True)
        try:
            with pytest.raises(DBAPIError):
                await turns.start_call(start("during"))
            with pytest.raises(DBAPIError):  # a new connection is refused too
                await turns.start_call(start("during-2"))
        finally:
            await asyncio.to_thread(_refuse_connections, admin_url, database, False)
        await turns.start_call(start("after"))
        assert await turns.end_call(
            CallEnd("after", "completed", utc_now(), turn=turn("q", "a"))
        ) == [
            1,
            2,
        ]


async def test_a_bad_write_pool_size_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp_agent.db.errors import InputError
    from mcp_agent.db.write_pool import WRITE_POOL_SIZE_ENV, write_pool_size

    for bad in ("0", "ten", "-3"):
        monkeypatch.setenv(WRITE_POOL_SIZE_ENV, bad)
        with pytest.raises(InputError, match=f"{WRITE_POOL_SIZE_ENV}: {bad!r}"):
            write_pool_size()
    monkeypatch.setenv(WRITE_POOL_SIZE_ENV, " 4 ")
    assert write_pool_size() == 4

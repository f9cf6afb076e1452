"""The turn store: one behaviour suite for the in-memory store, SQLite and PostgreSQL (whose
end of a call is one round trip through `fa_end_call`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.conversations.in_memory import InMemoryConversationStore
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.errors import CallNotStartedError, SessionError
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.turns.base import CallEnd, TurnStore
from mcp_agent.db.turns.in_memory import InMemoryTurnStore
from mcp_agent.db.turns.sql import SqlTurnStore


@dataclass
class Backend:
    turns: TurnStore
    conversations: Any
    runtime: DatabaseRuntime | None

    async def status(self, execution_id: str) -> tuple[str, int, Decimal | None]:
        if self.runtime is None:
            assert isinstance(self.turns, InMemoryTurnStore)
            record = self.turns.executions[execution_id]
        else:
            (record,) = await SqlExecutionStore(self.runtime).tree(execution_id)
        return record.status, record.input_tokens, record.cost


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backend]:  # noqa: ANN001
    if request.param == "memory":
        conversations = InMemoryConversationStore()
        yield Backend(InMemoryTurnStore(conversations), conversations, None)
        return
    request.applymarker(getattr(pytest.mark, request.param))
    url = _database_url(request, request.param, tmp_path)
    async with await DatabaseRuntime.open(url) as runtime:
        yield Backend(SqlTurnStore(runtime), SqlConversationStore(runtime), runtime)


def _database_url(request: pytest.FixtureRequest, kind: str, tmp_path) -> str:  # noqa: ANN001
    import shutil

    if kind == "sqlite":
        path = tmp_path / "turns.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
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


USAGE = UsageTurn(
    provider="openai",
    model="gpt-test",
    input_tokens=10,
    output_tokens=5,
    cache_read_tokens=0,
    cache_write_tokens=0,
    reasoning_tokens=0,
    tool_use_tokens=0,
    cost=Decimal("0.0015"),
    raw_usage={"prompt_tokens": 10},
)


async def test_a_call_ends_with_its_turn_usage_and_totals(backend: Backend) -> None:
    await backend.conversations.ensure_session("s")
    await backend.turns.start_call(start("e1"))
    assert (await backend.status("e1"))[0] == "running"
    totals = UsageTotals()
    totals.add_turn(USAGE)
    sequences = await backend.turns.end_call(
        CallEnd("e1", "completed", utc_now(), totals=totals, usage=[USAGE], turn=turn("q", "a"))
    )
    assert sequences == [1, 2]
    assert await backend.status("e1") == ("completed", 10, Decimal("0.0015"))
    await backend.turns.start_call(start("e2"))
    assert await backend.turns.end_call(
        CallEnd("e2", "completed", utc_now(), turn=turn("q2", "a2 \x00 nul"))
    ) == [3, 4]
    history = await backend.conversations.load("s", "agent")
    assert [m.content.all_text() for m in history] == ["q", "a", "q2", "a2 \x00 nul"]
    assert history[1].provider_messages == [{"role": "assistant", "content": "a"}]
    assert history[0].provider_messages is None


async def test_a_missing_session_fails_the_end_and_changes_nothing(backend: Backend) -> None:
    await backend.turns.start_call(start("e1", session_id=None))
    with pytest.raises(SessionError, match="nosuch"):
        await backend.turns.end_call(
            CallEnd("e1", "completed", utc_now(), turn=turn("q", "a", session_id="nosuch"))
        )
    assert (await backend.status("e1"))[0] == "running"
    # A failed call without a turn keeps the totals it had.
    await backend.turns.end_call(CallEnd("e1", "failed", utc_now(), error="boom"))
    assert await backend.status("e1") == ("failed", 0, None)


async def test_the_end_of_a_call_never_started_stores_nothing(backend: Backend) -> None:
    """On PostgreSQL a start is committed without waiting for the disk (migration 0006): a
    server crash can lose it, and its end must then store nothing rather than orphans."""
    await backend.conversations.ensure_session("s")
    with pytest.raises(CallNotStartedError, match="ghost"):
        await backend.turns.end_call(
            CallEnd("ghost", "completed", utc_now(), usage=[USAGE], turn=turn("q", "a"))
        )
    assert await backend.conversations.load("s", "agent") == []


async def test_concurrent_ends_on_one_session_get_gap_free_sequences(backend: Backend) -> None:
    await backend.conversations.ensure_session("s")
    ids = [f"e{number}" for number in range(12)]
    for execution_id in ids:
        await backend.turns.start_call(start(execution_id))
    results = await asyncio.gather(
        *(
            backend.turns.end_call(
                CallEnd(execution_id, "completed", utc_now(), turn=turn("q", "a"))
            )
            for execution_id in ids
        )
    )
    assert sorted(sequence for pair in results for sequence in pair) == list(range(1, 25))
    assert [m.sequence for m in await backend.conversations.load("s", "agent")] == list(
        range(1, 25)
    )


async def test_a_branch_continues_after_its_branch_point(backend: Backend) -> None:
    if backend.runtime is None:
        pytest.skip("the in-memory conversation store has no branches")
    store = backend.conversations
    await store.ensure_session("s")
    await backend.turns.start_call(start("e1"))
    await backend.turns.end_call(CallEnd("e1", "completed", utc_now(), turn=turn("1", "2")))
    await backend.turns.start_call(start("e2"))
    await backend.turns.end_call(CallEnd("e2", "completed", utc_now(), turn=turn("3", "4")))
    child = await store.fork("s", at_sequence=2, agent_name="agent", new_session_id="child")
    await backend.turns.start_call(start("e3", session_id=child))
    assert await backend.turns.end_call(
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
    tmp_path,  # noqa: ANN001
) -> None:
    """The write pool's connections die with the server's backends: the next start fails
    (before a model would be asked) with the driver's error as SQLAlchemy's, and once the
    database answers again the pool replaces them and calls are recorded again."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    url = _database_url(request, "postgresql", tmp_path)
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

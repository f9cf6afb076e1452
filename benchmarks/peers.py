"""Benchmark: two peer systems storing and loading the same conversations on the same PostgreSQL.

The peers are LangGraph's Postgres checkpointer (AsyncPostgresSaver) and Google ADK's
DatabaseSessionService. They are measured with the protocol our own store is measured with
(benchmarks/suite.py, history), on the conversation content of benchmarks/history.py, each in
its own native message types (LangChain messages; ADK events with google.genai content).

For each size N, in a fresh conversation (thread / session) holding exactly N messages:
* load: the full conversation through the public API, messages materialised (median of 3 loads
  up to 10,000 messages, one above);
* append: turns of a user and an assistant message, one turn at a time, persisted as each system
  persists a turn (at most 5 turns from 100,000 messages on), as messages per second.
Building the N-message conversation is not timed; it uses the cheapest legitimate way for each
system (see langgraph_history and adk_history).

Run: uv run --no-dev --group bench python benchmarks/peers.py [--sizes 100,1000,10000] [--turns 20]
Not part of the test suite; starts an embedded PostgreSQL (or uses
FAST_AGENT_TEST_DATABASE_URL), prints a table, leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions import DatabaseSessionService, Session
from google.genai import types
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from sqlalchemy import insert, inspect

sys.path.insert(0, str(Path(__file__).parent))
from history import (  # noqa: E402
    REPLY,
    database_url,
    load_repeats,
    protocol_arguments,
    question,
    scratch_database,
    turns_for,
)

from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402

APP_NAME = "peers-bench"
USER_ID = "user"
AGENT_NAME = "assistant"
PACKAGES = (
    "langgraph-checkpoint-postgres",
    "langgraph-checkpoint",
    "langchain-core",
    "google-adk",
    "google-genai",
    "sqlalchemy",
    "psycopg",
)


# -- LangGraph -----------------------------------------------------------------------------


def langgraph_turn(number: int) -> list[BaseMessage]:
    # The add_messages reducer gives every message an id before it is stored.
    return [
        HumanMessage(content=question(number), id=str(uuid.uuid4())),
        AIMessage(content=REPLY, id=str(uuid.uuid4())),
    ]


def thread_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


class MessagesThread:
    """The checkpoints a MessagesState graph leaves in one thread: the whole message list as the
    `messages` channel value, one blob per channel version, each checkpoint chained to its
    parent."""

    def __init__(self, saver: AsyncPostgresSaver, thread_id: str) -> None:
        self.saver = saver
        self.config = thread_config(thread_id)
        self.messages_version: str | None = None
        self.step = -1

    async def put(self, messages: list[BaseMessage]) -> None:
        self.messages_version = self.saver.get_next_version(self.messages_version, None)
        self.step += 1
        checkpoint: Checkpoint = empty_checkpoint()  # a fresh, time-ordered id
        checkpoint["channel_values"] = {"messages": messages}
        checkpoint["channel_versions"] = {"messages": self.messages_version}
        checkpoint["updated_channels"] = ["messages"]
        # The returned config names this checkpoint: the parent of the next put.
        self.config = await self.saver.aput(
            self.config,
            checkpoint,
            {"source": "loop", "step": self.step, "parents": {}},
            {"messages": self.messages_version},
        )


async def load_langgraph_messages(saver: AsyncPostgresSaver, thread_id: str) -> list[BaseMessage]:
    loaded = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    assert loaded is not None
    return loaded.checkpoint["channel_values"]["messages"]


async def langgraph_history(
    server_url: str, sizes: list[int], timed_turns: int
) -> list[dict[str, Any]]:
    """LangGraph AsyncPostgresSaver: per size, load the thread's latest checkpoint, then append
    turns as one checkpoint each."""
    results = []
    with scratch_database(server_url, "peers_langgraph") as database:
        url = database_url(server_url, database, "postgresql")  # libpq URL
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            warm_up = MessagesThread(saver, "warm-up")
            for number in range(2):  # connection, statement plans, serializer
                await warm_up.put(langgraph_turn(number))
                await load_langgraph_messages(saver, "warm-up")

            for size in sizes:
                thread_id = f"history-{size}-{uuid.uuid4().hex[:8]}"
                thread = MessagesThread(saver, thread_id)
                messages = [m for n in range((size + 1) // 2) for m in langgraph_turn(n)][:size]
                await thread.put(messages)  # setup: one checkpoint holding all N messages

                loads = []
                for _ in range(load_repeats(size)):
                    started = time.perf_counter()
                    loaded = await load_langgraph_messages(saver, thread_id)
                    loads.append(time.perf_counter() - started)
                    assert len(loaded) == size

                # One put per turn favours LangGraph: a real graph invocation writes more than
                # one checkpoint per turn (the input, then each node step), plus aput_writes.
                turns = turns_for(size, timed_turns)
                started = time.perf_counter()
                for number in range(size, size + turns):
                    messages = messages + langgraph_turn(number)  # add_messages: the full list
                    await thread.put(messages)
                elapsed = time.perf_counter() - started
                assert len(await load_langgraph_messages(saver, thread_id)) == size + 2 * turns

                results.append(
                    {
                        "size": size,
                        "load_s": statistics.median(loads),
                        "append_messages_per_s": 2 * turns / elapsed,
                    }
                )
    return results


# -- ADK -----------------------------------------------------------------------------------

EVENT_SPACING_S = 0.001  # distinct, ordered timestamps for the bulk-built events


def adk_turn(number: int) -> list[Event]:
    invocation_id = f"e-{uuid.uuid4()}"  # as the Runner names an invocation
    return [
        Event(
            author="user",
            invocation_id=invocation_id,
            content=types.Content(role="user", parts=[types.Part(text=question(number))]),
        ),
        Event(
            author=AGENT_NAME,
            invocation_id=invocation_id,
            content=types.Content(role="model", parts=[types.Part(text=REPLY)]),
        ),
    ]


async def insert_adk_events(
    service: DatabaseSessionService, session: Session, events: list[Event]
) -> None:
    """Store events in one transaction, row for row as append_event stores them.

    Appending 100k events one transaction each through append_event is too slow for an untimed
    setup, so this builds each row with ADK's own StorageEvent.from_event (the call append_event
    makes) and bulk-inserts them; it then sets the session's update_time to the last event's
    time, as append_event does. Everything timed goes through the public API.
    """
    schema = service._get_schema_classes()
    columns = [attribute.key for attribute in inspect(schema.StorageEvent).column_attrs]
    rows = [schema.StorageEvent.from_event(session, event) for event in events]
    values = [{key: getattr(row, key) for key in columns} for row in rows]
    async with service.database_session_factory() as sql_session:
        await sql_session.execute(insert(schema.StorageEvent), values)
        stored = await sql_session.get(
            schema.StorageSession, (session.app_name, session.user_id, session.id)
        )
        assert stored is not None
        stored.update_time = rows[-1].timestamp
        await sql_session.commit()


async def load_adk_session(service: DatabaseSessionService, session_id: str) -> Session:
    session = await service.get_session(app_name=APP_NAME, user_id=USER_ID, session_id=session_id)
    assert session is not None
    return session


async def adk_history(server_url: str, sizes: list[int], timed_turns: int) -> list[dict[str, Any]]:
    """ADK DatabaseSessionService: per size, get_session, then append_event for the user and the
    assistant event of each turn."""
    results = []
    with scratch_database(server_url, "peers_adk") as database:
        # The async psycopg 3 driver: the service requires an asynchronous one.
        service = DatabaseSessionService(database_url(server_url, database, "postgresql+psycopg"))
        try:
            # Warm-up: the tables are created lazily by the first call; connections, plans.
            warm_up = await service.create_session(app_name=APP_NAME, user_id=USER_ID)
            for number in range(2):
                for event in adk_turn(number):
                    await service.append_event(warm_up, event)
                await load_adk_session(service, warm_up.id)

            for size in sizes:
                created = await service.create_session(app_name=APP_NAME, user_id=USER_ID)
                events = [e for n in range((size + 1) // 2) for e in adk_turn(n)][:size]
                first = time.time() - (size + 1) * EVENT_SPACING_S  # all before the timed turns
                for index, event in enumerate(events):
                    event.timestamp = first + index * EVENT_SPACING_S
                await insert_adk_events(service, created, events)

                loads = []
                for _ in range(load_repeats(size)):
                    started = time.perf_counter()
                    session = await load_adk_session(service, created.id)
                    loads.append(time.perf_counter() - started)
                    assert len(session.events) == size

                # As the Runner persists a turn: append_event for the user's event, then for the
                # agent's, on the session object the service returned.
                turns = turns_for(size, timed_turns)
                started = time.perf_counter()
                for number in range(size, size + turns):
                    for event in adk_turn(number):
                        await service.append_event(session, event)
                elapsed = time.perf_counter() - started
                reloaded = await load_adk_session(service, created.id)
                assert len(reloaded.events) == size + 2 * turns

                results.append(
                    {
                        "size": size,
                        "load_s": statistics.median(loads),
                        "append_messages_per_s": 2 * turns / elapsed,
                    }
                )
        finally:
            await service.close()
    return results


# -- standalone run ------------------------------------------------------------------------


def main() -> None:
    sizes, turns = protocol_arguments(__doc__.splitlines()[0])
    results: dict[str, list[dict[str, Any]]] = {}
    with postgres_server() as server_url:
        for name, measure in (("LangGraph", langgraph_history), ("ADK", adk_history)):
            print(f"{name}...", flush=True)
            started = time.perf_counter()
            results[name] = asyncio.run(measure(server_url, sizes, turns))
            print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)

    print("\n" + ", ".join(f"{package} {version(package)}" for package in PACKAGES))
    print(f"\n{'system':<12}{'messages':>10}{'load':>12}{'append':>18}")
    for name, rows in results.items():
        for row in rows:
            print(
                f"{name:<12}{row['size']:>10,}{row['load_s']:>10.3f} s"
                f"{row['append_messages_per_s']:>12,.1f} msg/s"
            )


if __name__ == "__main__":
    main()

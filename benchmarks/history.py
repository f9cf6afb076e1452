"""Benchmark: conversation history in the database, as sessions grow.

The protocol, shared with the peers (benchmarks/peers.py) so the systems are compared on the
same conversations: for each size N, a fresh session holding exactly N messages (built
untimed, in large transactions), then
* load: the agent's whole history through SqlConversationStore.load, decoded into upstream's
  PromptMessageMultipart and provider-native items (median of 21 loads up to 1,000
  messages, of 5 up to 10,000, one above), beside the floor: a raw SELECT of the same rows
  and columns through the same engine, JSON left as undecoded text;
* append: turns of a user and an assistant message (with provider-native payloads, as a real
  turn stores), each stored as a run stores it: the end of its call (SqlTurnStore.end_call,
  one transaction with the call's end; the call's running row is written before, untimed),
  as messages per second.

Run: uv run python benchmarks/history.py [--sizes 100,1000,10000] [--turns 20]
Not part of the test suite; runs SQLite and an embedded PostgreSQL (or
FAST_AGENT_TEST_DATABASE_URL), prints a table, writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from mcp_agent.core.prompt import Prompt
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.migration_runner import MigrationRunner
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.turns.base import CallEnd
from mcp_agent.db.turns.sql import SqlTurnStore

REPLY = "A realistic assistant reply. " * 12
LARGE_SIZE = 100_000  # from here on: one load and at most LARGE_TIMED_TURNS timed turns
LARGE_TIMED_TURNS = 5
BUILD_BATCH = 1_000  # messages per transaction while building a session (untimed)


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create a database of its own for one system; yield its name; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(server_url: str, database: str, drivername: str) -> str:
    url = make_url(server_url).set(database=database, drivername=drivername)
    return url.render_as_string(hide_password=False)


def protocol_arguments(description: str) -> tuple[list[int], int]:
    """The standalone scripts' shared options: the sizes and the timed turns per size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated sizes")
    parser.add_argument("--turns", type=int, default=20, help="timed turns per size")
    args = parser.parse_args()
    return [int(size.replace("_", "")) for size in args.sizes.split(",")], args.turns


def question(number: int) -> str:
    return f"Question number {number}: what happened next, and why?"


def load_repeats(size: int) -> int:
    """Loads timed per size (their median is reported): many for the small sizes, whose few
    milliseconds a scheduler hiccup would otherwise decide."""
    if size <= 1_000:
        return 21
    return 5 if size < LARGE_SIZE else 1


def turns_for(size: int, timed_turns: int) -> int:
    return min(timed_turns, LARGE_TIMED_TURNS) if size >= LARGE_SIZE else timed_turns


def call_start(execution_id: str, session_id: str) -> ExecutionStart:
    return ExecutionStart(
        execution_id=execution_id,
        parent_execution_id=None,
        agent_name="agent",
        agent_version_id=None,
        operation="generate",
        started_at=utc_now(),
        worker_id="bench",
        session_id=session_id,
    )


def turn(number: int) -> list[NewMessage]:
    provider = [
        {"role": "user", "content": question(number)},
        {"role": "assistant", "content": REPLY, "refusal": None, "tool_calls": None},
    ]
    return [
        NewMessage(content=Prompt.user(question(number))),
        NewMessage(
            content=Prompt.assistant(REPLY),
            provider_messages=provider,
            provider="openai",
            model="gpt-4.1-mini",
        ),
    ]


_WHERE = " FROM fa_messages WHERE session_id = :session_id AND agent_name = :agent_name"
# The floor: a raw SELECT of the same rows through the same engine, as the driver returns them
# (psycopg decodes jsonb into dicts with json.loads; sqlite3 returns text).
RAW_SELECT = text("SELECT *" + _WHERE + " ORDER BY sequence")
# A stricter floor: the rows off the wire, JSON left as text (nothing decoded at all).
WIRE_SELECT = text(
    "SELECT message_id, session_id, agent_name, sequence, CAST(content AS TEXT),"
    " CAST(provider_messages AS TEXT), provider, model, created_at" + _WHERE + " ORDER BY sequence"
)


async def timed_select(runtime: DatabaseRuntime, query: Any, session_id: str, size: int) -> float:
    # Python's cyclic collector is paused while the rows arrive, as the store pauses it while
    # decoding: otherwise the floor would carry collector time the store does not pay.
    started = time.perf_counter()
    async with runtime.engine.connect() as connection:
        gc.disable()
        try:
            rows = (
                await connection.execute(query, {"session_id": session_id, "agent_name": "agent"})
            ).all()
        finally:
            gc.enable()
    elapsed = time.perf_counter() - started
    assert len(rows) == size
    return elapsed


async def fork_history(url: str, sizes: list[int], timed_turns: int) -> list[dict[str, Any]]:
    """fast-agent-db's SqlConversationStore on one database (SQLite or PostgreSQL)."""
    results = []
    async with await DatabaseRuntime.open(url) as runtime:
        store = SqlConversationStore(runtime)
        calls = SqlTurnStore(runtime)
        await store.ensure_session("warm-up")
        for number in range(20):  # connections, statement caches
            await store.append("warm-up", "agent", turn(number))
            execution_id = str(uuid.uuid4())
            await calls.start_call(call_start(execution_id, "warm-up"))
            await calls.end_call(
                CallEnd(
                    execution_id,
                    "completed",
                    utc_now(),
                    turn=PendingTurn("warm-up", "agent", turn(number)),
                )
            )
        await store.load("warm-up", "agent")
        for size in sizes:
            session_id = f"history-{size}-{uuid.uuid4().hex[:8]}"
            await store.ensure_session(session_id)
            for start in range(0, size, BUILD_BATCH):
                count = min(BUILD_BATCH, size - start)
                batch = [m for n in range(start // 2, (start + count + 1) // 2) for m in turn(n)]
                await store.append(session_id, "agent", batch[:count])

            loads, raws, wires = [], [], []
            for _ in range(load_repeats(size)):
                started = time.perf_counter()
                loaded = await store.load(session_id, "agent")
                loads.append(time.perf_counter() - started)
                assert len(loaded) == size
                del loaded
                raws.append(await timed_select(runtime, RAW_SELECT, session_id, size))
                wires.append(await timed_select(runtime, WIRE_SELECT, session_id, size))

            # The path a run takes: each call's running row (untimed), then its end, which
            # stores the turn with the call's end in one transaction (SqlTurnStore.end_call).
            turns = turns_for(size, timed_turns)
            elapsed = 0.0
            for number in range(size, size + turns):
                execution_id = str(uuid.uuid4())
                await calls.start_call(call_start(execution_id, session_id))
                started = time.perf_counter()
                await calls.end_call(
                    CallEnd(
                        execution_id,
                        "completed",
                        utc_now(),
                        turn=PendingTurn(session_id, "agent", turn(number)),
                    )
                )
                elapsed += time.perf_counter() - started
            results.append(
                {
                    "size": size,
                    "load_s": statistics.median(loads),
                    "raw_select_s": statistics.median(raws),
                    "load_to_raw": statistics.median(loads) / statistics.median(raws),
                    "wire_select_s": statistics.median(wires),
                    "load_to_wire": statistics.median(loads) / statistics.median(wires),
                    "append_messages_per_s": 2 * turns / elapsed,
                }
            )
    return results


def main() -> None:
    from mcp_agent.db.testing.embedded_postgres import postgres_server

    sizes, turns = protocol_arguments(__doc__.splitlines()[0])
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        MigrationRunner(url).upgrade()
        results["sqlite"] = asyncio.run(fork_history(url, sizes, turns))
    with postgres_server() as server_url, scratch_database(server_url, "fa_bench") as database:
        url = database_url(server_url, database, "postgresql+psycopg")
        MigrationRunner(url).upgrade()
        results["postgresql"] = asyncio.run(fork_history(url, sizes, turns))

    print(
        f"\n{'backend':<12}{'messages':>10}{'load':>10}{'raw SELECT':>12}{'x':>6}"
        f"{'JSON as text':>14}{'x':>6}{'append':>16}"
    )
    for backend, rows in results.items():
        for row in rows:
            print(
                f"{backend:<12}{row['size']:>10,}{row['load_s']:>8.3f} s"
                f"{row['raw_select_s']:>10.3f} s{row['load_to_raw']:>6.1f}"
                f"{row['wire_select_s']:>12.3f} s{row['load_to_wire']:>6.1f}"
                f"{row['append_messages_per_s']:>10,.0f} msg/s"
            )


if __name__ == "__main__":
    main()

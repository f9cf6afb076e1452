"""Benchmark: conversation history in the database, on SQLite and PostgreSQL side by side.

Reports, per backend, in one run:
* the per-turn persistence cost: appending one turn (a user and an assistant message with
  provider-native payloads, as a real turn stores) through SqlConversationStore;
* the time to load a 10,000-message session through the store, beside a raw SELECT of the
  same rows (the floor) measured in the same run.

Run: uv run python benchmarks/history.py [--turns 300] [--session-size 10000]
Not part of the test suite; prints a table, writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

from mcp_agent.core.prompt import Prompt
from sqlalchemy import select

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.migration_runner import MigrationRunner
from mcp_agent.db.models import MessageRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.embedded_postgres import postgres_server

REPLY = "A realistic assistant reply. " * 12


def turn(number: int) -> list[NewMessage]:
    question = f"Question number {number}: what happened next, and why?"
    provider = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": REPLY, "refusal": None, "tool_calls": None},
    ]
    return [
        NewMessage(content=Prompt.user(question)),
        NewMessage(
            content=Prompt.assistant(REPLY),
            provider_messages=provider,
            provider="openai",
            model="gpt-4.1-mini",
        ),
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(url: str, *, turns: int, session_size: int) -> dict[str, float]:
    await asyncio.to_thread(lambda: MigrationRunner(url).upgrade())
    async with await DatabaseRuntime.open(url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("per-turn")
        for number in range(20):  # warm-up: connections, statement caches
            await store.append("per-turn", "agent", turn(number))
        timings = []
        for number in range(turns):
            started = time.perf_counter()
            await store.append("per-turn", "agent", turn(number))
            timings.append((time.perf_counter() - started) * 1000)

        await store.ensure_session("big")
        batch = 50  # build the large session quickly: 50 turns per transaction
        for start in range(0, session_size // 2, batch):
            await store.append(
                "big",
                "agent",
                [m for number in range(start, start + batch) for m in turn(number)],
            )
        loads, raw = [], []
        for _ in range(5):
            started = time.perf_counter()
            history = await store.load("big", "agent")
            loads.append(time.perf_counter() - started)
            assert len(history) == session_size
            started = time.perf_counter()
            async with runtime.engine.connect() as connection:
                rows = (
                    await connection.execute(
                        select(MessageRow.__table__)
                        .where(MessageRow.session_id == "big", MessageRow.agent_name == "agent")
                        .order_by(MessageRow.sequence)
                    )
                ).all()
            raw.append(time.perf_counter() - started)
            assert len(rows) == session_size
    return {
        "turn_median_ms": statistics.median(timings),
        "turn_p99_ms": percentile(timings, 0.99),
        "load_s": statistics.median(loads),
        "raw_select_s": statistics.median(raw),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--session-size", type=int, default=10_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        results["sqlite"] = await measure(
            f"sqlite:///{Path(directory) / 'bench.db'}",
            turns=args.turns,
            session_size=args.session_size,
        )
    with postgres_server() as server_url:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(server_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS fa_bench")
            c.execute("CREATE DATABASE fa_bench")
        url = make_url(server_url).set(database="fa_bench").render_as_string(hide_password=False)
        results["postgresql"] = await measure(url, turns=args.turns, session_size=args.session_size)

    print(
        f"\nper-turn persistence ({args.turns} turns of 2 messages) and a "
        f"{args.session_size:,}-message session load"
    )
    header = ("backend", "turn median", "turn p99", "load", "raw SELECT", "load/raw")
    widths = (12, 14, 12, 10, 13, 10)
    print(
        "".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for backend, result in results.items():
        print(
            f"{backend:<12}{result['turn_median_ms']:>11.2f} ms{result['turn_p99_ms']:>9.2f} ms"
            f"{result['load_s']:>8.3f} s{result['raw_select_s']:>11.3f} s"
            f"{result['load_s'] / result['raw_select_s']:>9.1f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())

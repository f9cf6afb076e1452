"""Benchmark: latency of the live event feed on PostgreSQL, from an event's commit to a follower.

A writer process stores events one per transaction at a steady rate through SqlEventSink (the
sink every event writer uses: ordering lock, COPY, NOTIFY on commit); this process follows
them with EventFeed.follow (LISTEN, then a read through the engine per wake-up). Per event:
* commit -> yield: from the moment the writer's commit returned to the moment the follower
  yielded the event (the figure the feed is judged on; a follower can yield an event a moment
  before the writer's process has read its own commit's answer, so it can be slightly negative);
* write -> yield: from the moment the writer began the transaction (commit time included).
Both sides read the same clock (CLOCK_MONOTONIC, one per host). The EventWriter's batching
(flush every 0.5 s) is left out: it delays events before the database, not in the feed.

Run: uv run python benchmarks/feed_latency.py [--events 1000] [--rate 100] [--followers 1]
Not part of the test suite; an embedded PostgreSQL (or FAST_AGENT_TEST_DATABASE_URL), prints
the figures, writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from history import database_url, scratch_database  # noqa: E402

from mcp_agent.db.events.base import EventRecord  # noqa: E402
from mcp_agent.db.events.feed import EventFeed  # noqa: E402
from mcp_agent.db.events.sql import SqlEventSink  # noqa: E402
from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.runtime import DatabaseRuntime  # noqa: E402
from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402

TARGET_P99_MS = 50.0
WARM_UP_EVENTS = 20


def event(number: int, write_started: float) -> EventRecord:
    return EventRecord(
        occurred_at=datetime.now(UTC),
        level="info",
        namespace="benchmarks.feed_latency",
        message=f"event {number}",
        data={"number": number, "write_started": write_started},
        session_id="feed-latency",
        agent_name="writer",
    )


async def write_steadily(url: str, count: int, rate: float) -> None:
    """The writer process: `count` events, one transaction each, `rate` per second; prints
    each event's number and when its commit returned, one JSON line each, after the last."""
    committed: list[tuple[int, float]] = []
    async with await DatabaseRuntime.open(url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.write([event(-1, time.monotonic())])  # a warm connection before timing
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.monotonic()
        for number in range(count):
            # Steady: each event at its own time, however long the ones before took.
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            await sink.write([event(number, time.monotonic())])
            committed.append((number, time.monotonic()))
    for number, at in committed:
        print(json.dumps([number, at]))


async def follow(feed: EventFeed, after: int, count: int) -> dict[int, tuple[float, float]]:
    """Each event's number -> (when it was yielded, when its write began)."""
    yielded: dict[int, tuple[float, float]] = {}
    events = feed.follow(after, session_id="feed-latency")
    async with contextlib.aclosing(events):
        async for stored in events:
            at = time.monotonic()
            data = stored.record.data or {}
            yielded[int(data["number"])] = (at, float(data["write_started"]))
            if len(yielded) == count:
                break
    return yielded


def percentiles(values_ms: list[float]) -> str:
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return (
        f"p50 {cuts[49]:6.1f}  p90 {cuts[89]:6.1f}  p99 {cuts[98]:6.1f}  "
        f"max {max(values_ms):6.1f} ms"
    )


async def measure(url: str, count: int, rate: float, followers: int) -> None:
    async with await DatabaseRuntime.open(url) as runtime, EventFeed(runtime) as feed:
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--writer",
            url,
            "--events",
            str(count + WARM_UP_EVENTS),
            "--rate",
            str(rate),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert writer.stdin is not None and writer.stdout is not None
        assert await writer.stdout.readline() == b"ready\n"
        after = await feed.latest_event_id()
        following = [
            asyncio.ensure_future(follow(feed, after, count + WARM_UP_EVENTS))
            for _ in range(followers)
        ]
        # The first WARM_UP_EVENTS, written while the feed connects and listens, are not timed.
        writer.stdin.write(b"go\n")
        await writer.stdin.drain()
        results = await asyncio.gather(*following)
        stdout, _ = await writer.communicate()
    assert writer.returncode == 0
    committed = {number: at for number, at in map(json.loads, stdout.decode().splitlines())}

    timed = range(WARM_UP_EVENTS, count + WARM_UP_EVENTS)
    commit_to_yield = [
        (yielded[number][0] - committed[number]) * 1000 for yielded in results for number in timed
    ]
    write_to_yield = [
        (yielded[number][0] - yielded[number][1]) * 1000 for yielded in results for number in timed
    ]
    p99 = statistics.quantiles(commit_to_yield, n=100, method="inclusive")[98]
    print(f"\n{count:,} events at {rate:g}/s, one per transaction, {followers} follower(s)")
    print(f"{'commit -> yield':<18}{percentiles(commit_to_yield)}")
    print(f"{'write -> yield':<18}{percentiles(write_to_yield)}")
    verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
    print(f"target p99 < {TARGET_P99_MS:g} ms (commit -> yield): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--followers", type=int, default=1)
    parser.add_argument("--writer", metavar="URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.writer:
        asyncio.run(write_steadily(arguments.writer, arguments.events, arguments.rate))
        return
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    with postgres_server() as server_url, scratch_database(server_url, "fa_feed") as database:
        url = make_url(database_url(server_url, database, "postgresql+psycopg"))
        rendered = url.render_as_string(hide_password=False)
        MigrationRunner(rendered).upgrade()
        asyncio.run(measure(rendered, arguments.events, arguments.rate, arguments.followers))


if __name__ == "__main__":
    main()

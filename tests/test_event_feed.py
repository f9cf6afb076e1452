"""The live event feed (events/feed.py): events as they are committed, in id order, resumable.

On both backends: events another process writes reach a follower while that process still
runs; a follower that stops and resumes from the last id it saw, while three processes write
concurrently, ends with every event exactly once and in id order; filters; following from the
newest id; closing. On PostgreSQL also: a batch that drew its ids first but commits last is
delivered before the batches after it (the writers' ordering lock); the feed sends no query
while idle (proved on the server, see that test); a lost connection is replaced and what was
committed meanwhile is delivered.

Tests wait on events (a row, a line), each under a generous guard, never on a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.feed import LISTENER_APPLICATION_NAME, EventFeed, StoredEvent
from mcp_agent.db.events.sql import EVENTS_CHANNEL, ORDER_AND_NOTIFY_SQL, SqlEventSink
from mcp_agent.db.models import EventRow
from mcp_agent.db.runtime import DatabaseRuntime

ROOT = Path(__file__).resolve().parents[1]
#: Generous guard for waiting on an event; tests wait on events, not on clocks.
GUARD_S = 600
#: SQLite's poll interval in these tests (PostgreSQL does not poll).
POLL_S = 0.02

POSTGRESQL_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)]
)


def record(
    message: str,
    *,
    session_id: str = "feed",
    agent_name: str | None = None,
    level: str = "info",
) -> EventRecord:
    return EventRecord(
        occurred_at=datetime.now(UTC),
        level=level,
        namespace="tests.feed",
        message=message,
        session_id=session_id,
        agent_name=agent_name,
    )


async def write(runtime: DatabaseRuntime, *records: EventRecord) -> None:
    await SqlEventSink(runtime).write(records)


async def collect(events: AsyncGenerator[StoredEvent, None], count: int) -> list[StoredEvent]:
    """The first `count` events the follower yields (fewer if it ends), then it is closed."""
    received: list[StoredEvent] = []
    async with contextlib.aclosing(events):
        async for event in events:
            received.append(event)
            if len(received) == count:
                break
    return received


async def collect_until(
    events: AsyncGenerator[StoredEvent, None], last_message: str
) -> list[StoredEvent]:
    received: list[StoredEvent] = []
    async with contextlib.aclosing(events):
        async for event in events:
            received.append(event)
            if event.record.message == last_message:
                break
    return received


def messages(events: list[StoredEvent]) -> list[str]:
    return [event.record.message for event in events]


def assert_in_id_order_once(events: list[StoredEvent]) -> None:
    ids = [event.event_id for event in events]
    assert ids == sorted(set(ids)), "ids must rise strictly: in order, none twice"


async def start_writer(
    database_url: str,
    spill_dir: Path,
    writer_name: str,
    count: int,
    batch: int,
    *,
    pause_after: int = 0,
    session_id: str = "feed",
) -> asyncio.subprocess.Process:
    """tests/support/write_events.py in a process of its own."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.write_events",
        database_url,
        str(spill_dir),
        session_id,
        writer_name,
        str(count),
        str(batch),
        str(pause_after),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> str:
    """The process's remaining stdout, once it exited successfully."""
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.slow  # writer processes
async def test_events_another_process_writes_reach_a_follower_while_it_runs(
    database_url: str, runtime: DatabaseRuntime, tmp_path: Path
) -> None:
    """The writer stops halfway and waits for a line: its first half must reach the follower
    while it still runs (on PostgreSQL, only its NOTIFY can wake the follower)."""
    async with asyncio.timeout(GUARD_S), EventFeed(runtime, poll_interval=POLL_S) as feed:
        follower = feed.follow(await feed.latest_event_id())
        writer = await start_writer(database_url, tmp_path / "spill", "w", 200, 10, pause_after=90)
        first_half = await collect_until(follower, "w-89")
        assert writer.stdout is not None and writer.stdin is not None
        assert await writer.stdout.readline() == b"paused\n"
        assert writer.returncode is None  # still running: these came live

        second_half = feed.follow(first_half[-1].event_id)
        writer.stdin.write(b"go\n")
        received = first_half + await collect_until(second_half, "w-199")
        assert "written 200" in await finished(writer)
    assert messages(received) == [f"w-{number}" for number in range(200)]
    assert_in_id_order_once(received)


@pytest.mark.slow  # writer processes
async def test_a_follower_resuming_from_the_last_id_it_saw_misses_and_repeats_nothing(
    database_url: str, runtime: DatabaseRuntime, tmp_path: Path
) -> None:
    """Three processes write batches of 7, 11 and 13 at once, so their transactions interleave.
    The follower stops every 37 events, as a client that disconnects would, and resumes from
    the last id it saw; every other time on a new feed, as a client reconnecting to another
    server would, and every other new feed keeps only 16 events in memory, so the follower
    keeps falling behind them and reading on its own. Nothing may be missing, twice, or out
    of id order."""
    per_writer, stretch = 600, 37
    writers = [
        await start_writer(database_url, tmp_path / "spill", f"w{index}", per_writer, batch)
        for index, batch in enumerate((7, 11, 13))
    ]
    total = per_writer * len(writers)
    received: list[StoredEvent] = []
    feed = EventFeed(runtime, poll_interval=POLL_S)
    resumes = 0
    try:
        async with asyncio.timeout(GUARD_S):
            while len(received) < total:
                last_seen = received[-1].event_id if received else 0
                wanted = min(stretch, total - len(received))
                received += await collect(feed.follow(last_seen, session_id="feed"), wanted)
                resumes += 1
                if resumes % 2 == 0:
                    await feed.close()
                    small = {"page_size": 8, "recent_capacity": 16} if resumes % 4 else {}
                    feed = EventFeed(runtime, poll_interval=POLL_S, **small)
            for writer in writers:
                await finished(writer)
    finally:
        await feed.close()

    assert resumes > 40
    assert_in_id_order_once(received)
    assert Counter(messages(received)) == Counter(
        f"w{index}-{number}" for index in range(len(writers)) for number in range(per_writer)
    )
    async with runtime.sessions() as session:
        stored = list(await session.scalars(select(EventRow.event_id).order_by(EventRow.event_id)))
    assert [event.event_id for event in received] == stored


async def test_filters_select_exactly_the_matching_events(runtime: DatabaseRuntime) -> None:
    """Several followers with different filters share one feed; half the events are there
    before they start, half come after: they read the first half on their own (filters in
    SQL), the rest from the events the feed reads once for all (filters in Python). Pages of 4
    make each read several pages. The last event matches every filter, so each follower shows
    it got nothing more than its share."""
    levels = ("debug", "info", "warning", "error", "progress")
    written = [
        record(
            f"event {number}",
            session_id=("s1", "s2")[number % 2],
            agent_name=("a", "b", "c")[number % 3],
            level=levels[number % 5],
        )
        for number in range(60)
    ]
    final = record("final", session_id="s1", agent_name="b", level="error")
    rank = {"progress": 0, "debug": 0, "info": 1, "warning": 2, "error": 3}
    filters = [
        {"session_id": "s1"},
        {"agent_name": "b"},
        {"min_level": "warning"},
        {"min_level": "debug"},
        {"min_level": "info"},
        {"session_id": "s1", "agent_name": "b", "min_level": "info"},
        {},
    ]

    def matches(event: EventRecord, chosen: dict[str, str]) -> bool:
        return (
            event.session_id == chosen.get("session_id", event.session_id)
            and event.agent_name == chosen.get("agent_name", event.agent_name)
            and rank[event.level] >= rank[chosen.get("min_level", "debug")]
        )

    await write(runtime, *written[:30])
    async with (
        asyncio.timeout(GUARD_S),
        EventFeed(runtime, page_size=4, poll_interval=POLL_S) as feed,
    ):
        followers = [
            asyncio.ensure_future(collect_until(feed.follow(0, **chosen), "final"))
            for chosen in filters
        ]
        for start in range(30, 60, 5):
            await write(runtime, *written[start : start + 5])
        await write(runtime, final)
        results = await asyncio.gather(*followers)
    for chosen, received in zip(filters, results, strict=True):
        expected = [event.message for event in written if matches(event, chosen)] + ["final"]
        assert messages(received) == expected, chosen
        assert_in_id_order_once(received)


async def test_following_from_the_newest_id_yields_only_what_comes_after(
    runtime: DatabaseRuntime,
) -> None:
    await write(runtime, record("old 1"), record("old 2"))
    async with asyncio.timeout(GUARD_S), EventFeed(runtime, poll_interval=POLL_S) as feed:
        newest = await feed.latest_event_id()
        follower = asyncio.ensure_future(collect(feed.follow(newest), 2))
        await write(runtime, record("new 1"), record("new 2"))
        assert messages(await follower) == ["new 1", "new 2"]

        # None: from the newest id when iteration starts. Write until the follower has started
        # and one arrives; then the next ones follow without a gap, and nothing older came.
        follower = asyncio.ensure_future(collect(feed.follow(None), 3))
        written = 0
        while not follower.done():
            await write(runtime, record(f"later {written}"))
            written += 1
            await asyncio.wait([follower], timeout=0.05)
        received = messages(follower.result())
    first = int(received[0].removeprefix("later "))
    assert received == [f"later {number}" for number in range(first, first + 3)]


async def test_closing_the_feed_ends_its_followers(runtime: DatabaseRuntime) -> None:
    feed = EventFeed(runtime, poll_interval=POLL_S)
    received: asyncio.Queue[StoredEvent] = asyncio.Queue()

    async def consume() -> None:
        async for event in feed.follow(0):
            await received.put(event)

    async with asyncio.timeout(GUARD_S):
        consumer = asyncio.ensure_future(consume())
        await write(runtime, record("only"))
        assert (await received.get()).record.message == "only"
        await feed.close()
        await consumer  # the follower ended: the loop over it returned
    assert received.empty()
    with pytest.raises(RuntimeError, match="closed"):
        await anext(feed.follow(0))
    with pytest.raises(ValueError, match="min_level"):
        await anext(EventFeed(runtime).follow(0, min_level="loud"))


# PostgreSQL only -------------------------------------------------------------------------------


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_name(database_url: str) -> str:
    name = make_url(database_url).database
    assert name
    return name


@contextlib.asynccontextmanager
async def server_connection(
    request: pytest.FixtureRequest,
) -> AsyncIterator[psycopg.AsyncConnection]:
    """An autocommit connection to the server's maintenance database: what it runs is not
    activity in the test's database."""
    server_url = request.getfixturevalue("postgres_databases").server_url
    async with await psycopg.AsyncConnection.connect(_libpq(server_url), autocommit=True) as admin:
        yield admin


@POSTGRESQL_ONLY
async def test_a_batch_that_drew_its_ids_first_is_delivered_first_even_if_begun_earlier(
    database_url: str, runtime: DatabaseRuntime, request: pytest.FixtureRequest
) -> None:
    """A transaction writes fa_events the way the sink does (the ordering statement, then
    rows) and stays open; a second batch, written through the sink meanwhile, must wait for
    it to commit. Without the ordering its higher ids would commit first, and a follower that
    delivered them would never deliver the first batch's lower ids."""
    async with (
        asyncio.timeout(GUARD_S),
        EventFeed(runtime) as feed,
        server_connection(request) as admin,
        await psycopg.AsyncConnection.connect(_libpq(database_url)) as held,
    ):
        follower = asyncio.ensure_future(collect(feed.follow(await feed.latest_event_id()), 2))
        await held.execute(ORDER_AND_NOTIFY_SQL)
        await held.execute(
            "INSERT INTO fa_events (occurred_at, level, namespace, message) "
            "VALUES (now(), 'info', 'tests.feed', 'drew its id first')"
        )
        second = asyncio.ensure_future(write(runtime, record("drew its id second")))
        # The event: the second batch's backend waits on the advisory lock.
        while not await _waits_on_the_lock(admin, database_url):
            assert not second.done(), "the second batch committed while the first was open"
            await asyncio.wait([second], timeout=0.05)
        assert not second.done()
        await held.commit()
        await second
        received = await follower
    assert messages(received) == ["drew its id first", "drew its id second"]
    assert_in_id_order_once(received)


async def _waits_on_the_lock(admin: psycopg.AsyncConnection, database_url: str) -> bool:
    cursor = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event = 'advisory'",
        (_database_name(database_url),),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _client_activity(
    admin: psycopg.AsyncConnection, database_url: str
) -> list[tuple[object, ...]]:
    """Each client connection to the test's database: its pid, name, state, when its last
    query started, and that query."""
    cursor = await admin.execute(
        "SELECT pid, application_name, state, query_start, query FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend' ORDER BY pid",
        (_database_name(database_url),),
    )
    return await cursor.fetchall()


async def _settled_activity(
    admin: psycopg.AsyncConnection, database_url: str
) -> list[tuple[object, ...]]:
    """The activity once every connection is idle and two looks half a second apart agree."""
    previous = await _client_activity(admin, database_url)
    for _look in range(40):
        await asyncio.sleep(0.5)
        current = await _client_activity(admin, database_url)
        if current == previous and all(state == "idle" for _pid, _name, state, *_ in current):
            return current
        previous = current
    pytest.fail(f"the connections to the database kept querying: {previous}")


@POSTGRESQL_ONLY
async def test_an_idle_feed_sends_no_query(
    runtime: DatabaseRuntime, database_url: str, request: pytest.FixtureRequest
) -> None:
    """The proof is the server's, not a count kept by our own code: pg_stat_activity shows,
    for every connection to the test's database (the feed's listener and the pooled
    connections its followers read through), when its last query started. Once that has
    settled, an idle interval must change none of it, although the feed is given a poll
    interval of 10 ms (the SQLite path would query some 300 times). Two followers wait on it
    meanwhile; the listener sits `idle` with `LISTEN fa_events` as its last query; and the
    followers still get the next event at once."""
    idle_s = 3.0
    received: asyncio.Queue[StoredEvent] = asyncio.Queue()

    async def consume(events: AsyncGenerator[StoredEvent, None]) -> None:
        async for event in events:
            await received.put(event)

    async with (
        asyncio.timeout(GUARD_S),
        EventFeed(runtime, poll_interval=0.01) as feed,
        server_connection(request) as admin,
    ):
        newest = await feed.latest_event_id()
        consumers = [
            asyncio.ensure_future(consume(feed.follow(newest))),
            asyncio.ensure_future(consume(feed.follow(newest, min_level="warning"))),
        ]
        await write(runtime, record("before", level="warning"))
        assert {(await received.get()).record.message for _ in consumers} == {"before"}

        settled = await _settled_activity(admin, database_url)
        listeners = [row for row in settled if row[1] == LISTENER_APPLICATION_NAME]
        assert [(state, query) for _pid, _name, state, _start, query in listeners] == [
            ("idle", f"LISTEN {EVENTS_CHANNEL}")
        ]
        await asyncio.sleep(idle_s)
        assert await _client_activity(admin, database_url) == settled

        await write(runtime, record("after", level="error"))
        assert {(await received.get()).record.message for _ in consumers} == {"after"}
        for consumer in consumers:
            consumer.cancel()
        await asyncio.wait(consumers)


async def _others_gone(admin: psycopg.AsyncConnection, database_url: str, keep: int) -> bool:
    return all(row[0] == keep for row in await _client_activity(admin, database_url))


async def _listening(admin: psycopg.AsyncConnection, database_url: str) -> bool:
    return any(
        name == LISTENER_APPLICATION_NAME and query == f"LISTEN {EVENTS_CHANNEL}"
        for _pid, name, _state, _start, query in await _client_activity(admin, database_url)
    )


@POSTGRESQL_ONLY
async def test_a_lost_connection_is_replaced_and_nothing_committed_meanwhile_is_missed(
    runtime: DatabaseRuntime, database_url: str, request: pytest.FixtureRequest
) -> None:
    """Every connection the feed has (its listener, the pooled connections its follower reads
    through) is cut, and new ones are refused, while another connection commits events: no
    notification can reach the feed then. Once connections are allowed again, the feed
    listens again and the follower reads them from its last id; later events come live."""
    name = _database_name(database_url)
    received: asyncio.Queue[StoredEvent] = asyncio.Queue()

    async def consume(events: AsyncGenerator[StoredEvent, None]) -> None:
        async for event in events:
            await received.put(event)

    async with (
        asyncio.timeout(GUARD_S),
        EventFeed(runtime, retry_interval=0.1) as feed,
        server_connection(request) as admin,
        await psycopg.AsyncConnection.connect(_libpq(database_url)) as writer,
    ):
        consumer = asyncio.ensure_future(consume(feed.follow(await feed.latest_event_id())))
        await write(runtime, record("before"))
        assert (await received.get()).record.message == "before"

        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                (name, writer.info.backend_pid),
            )
            while not await _others_gone(admin, database_url, writer.info.backend_pid):
                await asyncio.sleep(0.05)
            for number in range(3):
                await writer.execute(ORDER_AND_NOTIFY_SQL)
                await writer.execute(
                    "INSERT INTO fa_events (occurred_at, level, namespace, message, session_id) "
                    "VALUES (now(), 'info', 'tests.feed', %s, 'feed')",
                    (f"meanwhile {number}",),
                )
                await writer.commit()
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

        meanwhile = [await received.get() for _ in range(3)]
        assert messages(meanwhile) == [f"meanwhile {number}" for number in range(3)]

        while not await _listening(admin, database_url):
            await asyncio.sleep(0.05)
        await write(runtime, record("after"))
        assert (await received.get()).record.message == "after"
        consumer.cancel()
        await asyncio.wait([consumer])


async def test_an_id_is_never_drawn_again_after_the_newest_rows_are_deleted(
    runtime: DatabaseRuntime,
) -> None:
    """A follower that saw the newest id resumes after it: if a prune deleted the rows with the
    newest ids and later events took those ids again, it would skip them (SQLite before
    migration 0010)."""
    await write(runtime, record("first"), record("second"), record("third"))
    async with runtime.sessions() as session:
        newest = await session.scalar(select(func.max(EventRow.event_id)))
        await session.execute(delete(EventRow).where(EventRow.event_id >= newest - 1))
        await session.commit()
    await write(runtime, record("after the prune"))
    async with EventFeed(runtime, poll_interval=POLL_S) as feed:
        received = await collect(feed.follow(newest), 1)
    assert messages(received) == ["after the prune"]
    assert received[0].event_id > newest

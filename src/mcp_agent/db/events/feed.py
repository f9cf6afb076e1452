"""The live event feed: events as they are written, in event_id order, resumable from an id.

`EventFeed.follow(after_event_id)` yields every event with a greater id, oldest first, and then
each new one as it is committed, for as long as the caller iterates. Given the last id a client
saw (an SSE `Last-Event-ID`), it yields exactly the events after it: none twice, none missed.

Why a single id is enough to resume from
----------------------------------------
With several writers, ids are drawn before commit: a batch that drew ids 100-199 could commit
after one that drew 200-210, and a reader that had delivered 210 would never go back for 100.
So the writers commit in id order instead: every transaction that writes fa_events on
PostgreSQL takes one transaction-scoped advisory lock before drawing its first id
(`events.sql.ORDER_AND_NOTIFY_SQL`), held to its commit. PostgreSQL makes a commit visible
before it releases the transaction's locks, so the next batch draws its ids only once the
previous one is visible. Hence the ids a reader sees always form a prefix of the ids that will
ever exist (gaps are ids of rolled-back batches, never filled later), and the highest visible
id is a watermark: nothing at or below it can still appear. SQLite needs no lock for this: it
has one writer at a time, and a row's id is drawn inside the write transaction.

The alternatives were weaker: holding back what is younger than a settling time guesses at
how long a commit takes; re-reading a window behind the newest id needs a set of delivered ids,
which a client cannot hand back in `Last-Event-ID`. The lock costs an ordering of event batches
between processes, which write off the turns' path in batches of up to 2,000 rows, and PostgreSQL
already serialises the commits of transactions that NOTIFY.

Each read takes the watermark first (`max(event_id)`), then the rows in (cursor, watermark],
and moves the cursor to the watermark even when nothing matched, so a filtered follower never
reads the same rows twice. Rows come in pages of `page_size`.

Reading once for every follower
-------------------------------
Followers that are caught up share one read per wake-up: it brings every new event, unfiltered,
into a window of the newest `recent_capacity` events kept in memory, and each follower takes
from there what matches its filters (the same filters as `fast-agent-db logs`, applied in
Python). So the database answers one query per burst of commits however many followers wait;
with a query per follower, ten followers had three times the p99 latency of one
(benchmarks/feed_latency.py).
A follower further behind than the window (one resuming from an older id, or one too slow for
the rate of events) reads on its own with its filters in SQL, page after page, until it is
caught up. A follower waits only on a read begun after it cleared its flag (reads are numbered),
so a read already under way when it was woken does not count for it.

Only rows written through `SqlEventSink` (every event writer and spill replay of this package)
follow the protocol; a program inserting into fa_events by other means would void the guarantee
for its rows. On SQLite the table has AUTOINCREMENT (migration 0010), so an id is never drawn
again after its row is pruned.

Waking up
---------
PostgreSQL: no polling. Every batch sends `NOTIFY fa_events` in its own transaction, so the
notification arrives on commit, from any process writing through our sink. The feed holds one
dedicated psycopg connection in autocommit that LISTENs (application_name
LISTENER_APPLICATION_NAME) and sets each follower's wake-up flag on a notification; followers
then read (as above) through the runtime's engine, in a short session each read. A follower
clears its flag before it reads, so a burst of notifications during a read costs one more
read, not one each.
When the listening connection is lost, the feed reconnects (at once, then every
`retry_interval` while the database refuses), LISTENs again and wakes every follower, which
re-reads from its last delivered id: what was committed meanwhile is found then.

SQLite: no notifications exist, so one task per feed reads `max(event_id)` every
`poll_interval` seconds (DEFAULT_POLL_INTERVAL_S) and wakes the followers when it changed.

The listener or poller runs only while somebody follows: it starts with the first follower and
stops when the last one leaves (the window of kept events is dropped then).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Self, TypeVar

from sqlalchemy import ColumnElement, func, select

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.failures import describe_failure, is_connectivity_failure
from mcp_agent.db.events.queries import (
    LEVELS,
    allowed_levels,
    event_conditions,
    stored_record,
)
from mcp_agent.db.events.sql import EVENTS_CHANNEL
from mcp_agent.db.models import EventRow
from mcp_agent.db.runtime import DatabaseRuntime

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_RECENT_CAPACITY",
    "DEFAULT_RETRY_INTERVAL_S",
    "LISTENER_APPLICATION_NAME",
    "EventFeed",
    "StoredEvent",
]

#: SQLite: how often the feed looks for new events while somebody follows (seconds).
DEFAULT_POLL_INTERVAL_S = 0.2
#: Events read per query; a follower further behind reads page after page.
DEFAULT_PAGE_SIZE = 500
#: The newest events the feed keeps for its followers: one read serves all that are caught up.
DEFAULT_RECENT_CAPACITY = 2_000
#: While the database cannot be reached: how long before the next try (seconds).
DEFAULT_RETRY_INTERVAL_S = 1.0
#: How the listening connection names itself in pg_stat_activity.
LISTENER_APPLICATION_NAME = "fast-agent-db event feed"
#: TCP keepalives on the listening connection: it sends nothing, so without them a server that
#: vanished without closing the socket would leave it waiting forever.
_LISTENER_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: its id in fa_events (the feed's resumption point) and its record."""

    event_id: int
    record: EventRecord


class EventFeed:
    """Follows fa_events as it is written; one per process is enough for any number of
    followers (see the module docstring for how nothing is missed).

    Use as an async context manager, or call `close` when done: it ends every follower.
    """

    def __init__(
        self,
        runtime: DatabaseRuntime,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        page_size: int = DEFAULT_PAGE_SIZE,
        recent_capacity: int = DEFAULT_RECENT_CAPACITY,
        retry_interval: float = DEFAULT_RETRY_INTERVAL_S,
    ) -> None:
        if poll_interval <= 0 or retry_interval <= 0 or not 1 <= page_size <= recent_capacity:
            raise ValueError(
                "poll_interval and retry_interval must be positive, and page_size from 1 to "
                f"recent_capacity; got {poll_interval}, {retry_interval}, {page_size}, "
                f"{recent_capacity}"
            )
        self._runtime = runtime
        self._poll_interval = poll_interval
        self._page_size = page_size
        self._recent_capacity = recent_capacity
        self._retry_interval = retry_interval
        #: The newest events, read once for every follower caught up with them: each event
        #: with an id in (_recent_floor, _recent_top] is here, in id order. Floor None: none
        #: read yet (the first shared read starts it at the newest id).
        self._recent: deque[StoredEvent] = deque()
        self._recent_floor: int | None = None
        self._recent_top = 0
        #: Whether the last shared read reached its watermark (it stops at recent_capacity).
        self._recent_complete = True
        self._shared_read: asyncio.Future[None] | None = None
        #: Shared reads numbered as they start; the highest number completed.
        self._shared_reads_started = 0
        self._shared_reads_done = 0
        #: Each follower's wake-up flag, set when there may be something new to read.
        self._wake_flags: set[asyncio.Event] = set()
        #: The listener (PostgreSQL) or poller (SQLite), while somebody follows.
        self._watcher: asyncio.Task[None] | None = None
        #: Watchers and shared reads cancelled, not yet finished.
        self._stopping: set[asyncio.Future[None]] = set()
        self._listener_connect_kwargs: dict[str, Any] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def latest_event_id(self) -> int:
        """The highest event id stored now (0 when there is none): following from it yields
        only events written from now on."""
        async with self._runtime.sessions() as session:
            return await session.scalar(select(func.max(EventRow.event_id))) or 0

    async def follow(
        self,
        after_event_id: int | None,
        *,
        session_id: str | None = None,
        agent_name: str | None = None,
        min_level: str | None = None,
    ) -> AsyncGenerator[StoredEvent, None]:
        """Every event with an id above `after_event_id` that matches the filters, in id order,
        then each new one as it is committed, until the caller stops or the feed is closed.

        `after_event_id` None: only events written after the first iteration starts (the
        caller can also pass `latest_event_id()`). Filters are those of `fast-agent-db logs`;
        `min_level` is one of LEVELS (progress events count as debug).

        Stop by leaving the loop inside `contextlib.aclosing(...)` (or by cancelling the task
        that iterates). A pending `__anext__` must not be cancelled to wait with a time limit:
        that ends the iterator. For keep-alives while nothing happens, keep one future of
        `__anext__` and `asyncio.wait` on it with a timeout, as often as needed.

        While the database cannot be reached, the follower waits and tries again; it raises
        only for other errors.

        Raises:
            ValueError: `min_level` is not one of LEVELS.
            RuntimeError: the feed is closed.
        """
        if min_level is not None and min_level not in LEVELS:
            raise ValueError(f"min_level must be one of {', '.join(LEVELS)}, got {min_level!r}")
        if self._closed:
            raise RuntimeError("the event feed is closed")
        conditions = event_conditions(
            session_id=session_id, agent_name=agent_name, min_level=min_level
        )
        matches = _matcher(session_id=session_id, agent_name=agent_name, min_level=min_level)
        wake = asyncio.Event()
        self._join(wake)
        try:
            cursor = after_event_id
            if cursor is None:
                cursor = await self._until_answered(wake, self.latest_event_id)
            while not self._closed:
                # Cleared before reading: a commit the read misses sets it again.
                wake.clear()
                if self._recent_floor is None or self._recent_floor <= cursor:
                    # Caught up: one read, started after the flag was cleared, for everyone.
                    await self._until_answered(
                        wake, partial(self._share_read, self._shared_reads_started + 1)
                    )
                    if self._closed:
                        break
                if self._recent_floor is not None and self._recent_floor <= cursor:
                    events, cursor = self._take_recent(cursor, matches)
                    more = not self._recent_complete
                else:
                    # Behind the events kept (resuming from an older id): reads of its own.
                    events, cursor = await self._until_answered(
                        wake, partial(self._read_after, cursor, conditions)
                    )
                    more = len(events) == self._page_size
                for event in events:
                    yield event
                if not more and not self._closed:
                    await wake.wait()
        finally:
            self._leave(wake)

    async def close(self) -> None:
        """End every follower and stop listening or polling."""
        self._closed = True
        self._wake_all()
        self._stop_watching()
        stopping, self._stopping = self._stopping, set()
        if stopping:
            await asyncio.wait(stopping)

    async def _read_after(
        self, cursor: int, conditions: list[ColumnElement[bool]]
    ) -> tuple[list[StoredEvent], int]:
        """The next page of matching events after `cursor`, and the cursor to read on from:
        the last event's id after a full page, else the watermark read first."""
        async with self._runtime.sessions() as session:
            watermark = await session.scalar(select(func.max(EventRow.event_id)))
            if watermark is None or watermark <= cursor:
                return [], cursor
            rows = await session.scalars(
                select(EventRow)
                .where(EventRow.event_id > cursor, EventRow.event_id <= watermark, *conditions)
                .order_by(EventRow.event_id)
                .limit(self._page_size)
            )
            events = [StoredEvent(row.event_id, stored_record(row)) for row in rows]
        if len(events) == self._page_size:
            return events, events[-1].event_id
        return events, watermark

    async def _share_read(self, ticket: int) -> None:
        """Return once the shared read numbered `ticket`, or a later one, has completed.

        A follower asks for the number after the last one started when it clears its flag, so
        it waits for a read begun after that, joining whichever is under way if that one is.
        """
        while self._shared_reads_done < ticket:
            if self._shared_read is None or self._shared_read.done():
                self._shared_reads_started += 1
                self._shared_read = asyncio.ensure_future(
                    self._read_recent(self._shared_reads_started)
                )
                # Its waiters take its failure; this keeps asyncio quiet if none is left.
                self._shared_read.add_done_callback(_retrieve_failure)
            shared = self._shared_read
            try:
                # Shielded: a follower that leaves does not cut the read short for the others.
                await asyncio.shield(shared)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not shared.cancelled() or (task is not None and task.cancelling()):
                    raise
                return  # the read was stopped (the feed is closing), not this follower

    async def _read_recent(self, number: int) -> None:
        """Shared read `number`: every event above `_recent_top` up to the watermark (or up to
        recent_capacity of them), unfiltered, into `_recent`."""
        async with self._runtime.sessions() as session:
            watermark = await session.scalar(select(func.max(EventRow.event_id))) or 0
            complete = True
            if self._recent_floor is None:
                self._recent_floor = self._recent_top = watermark
            read = 0
            while self._recent_top < watermark:
                rows = list(
                    await session.scalars(
                        select(EventRow)
                        .where(EventRow.event_id > self._recent_top, EventRow.event_id <= watermark)
                        .order_by(EventRow.event_id)
                        .limit(self._page_size)
                    )
                )
                for row in rows:
                    self._remember(StoredEvent(row.event_id, stored_record(row)))
                read += len(rows)
                if len(rows) < self._page_size:
                    self._recent_top = watermark
                elif read >= self._recent_capacity:
                    self._recent_top = rows[-1].event_id
                    complete = False
                    break
                else:
                    self._recent_top = rows[-1].event_id
        self._recent_complete = complete
        self._shared_reads_done = max(self._shared_reads_done, number)

    def _remember(self, event: StoredEvent) -> None:
        self._recent.append(event)
        if len(self._recent) > self._recent_capacity:
            self._recent_floor = self._recent.popleft().event_id

    def _take_recent(
        self, cursor: int, matches: Callable[[EventRecord], bool]
    ) -> tuple[list[StoredEvent], int]:
        """The kept events after `cursor` that match, and the cursor to read on from."""
        newer: list[StoredEvent] = []
        for event in reversed(self._recent):
            if event.event_id <= cursor:
                break
            newer.append(event)
        newer.reverse()
        return [event for event in newer if matches(event.record)], max(cursor, self._recent_top)

    async def _until_answered(
        self, wake: asyncio.Event, read: Callable[[], Awaitable[_Result]]
    ) -> _Result:
        """`await read()`, tried again every `retry_interval` (or sooner when woken) while the
        database cannot be reached."""
        failing = False
        while True:
            try:
                return await read()
            except Exception as error:
                if not is_connectivity_failure(error) or self._closed:
                    raise
                if not failing:
                    _report(f"cannot read events ({describe_failure(error)}); trying again")
                    failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._retry_interval)
            wake.clear()

    def _join(self, wake: asyncio.Event) -> None:
        self._wake_flags.add(wake)
        if self._watcher is None or self._watcher.done():
            watch = self._listen if self._runtime.dialect == "postgresql" else self._poll
            self._watcher = asyncio.create_task(watch(), name="fast-agent-db event feed")

    def _leave(self, wake: asyncio.Event) -> None:
        self._wake_flags.discard(wake)
        if not self._wake_flags:
            self._stop_watching()

    def _stop_watching(self) -> None:
        """Stop the listener or poller, and forget the kept events: with nobody following
        they would go stale, and the next follower starts them afresh at the newest id."""
        for task in (self._watcher, self._shared_read):
            if task is not None and not task.done():
                task.cancel()
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
        self._watcher = self._shared_read = None
        self._recent.clear()
        self._recent_floor = None
        self._recent_top = 0
        self._recent_complete = True

    def _wake_all(self) -> None:
        for wake in self._wake_flags:
            wake.set()

    async def _listen(self) -> None:
        """PostgreSQL: LISTEN on a connection of its own; wake the followers on each
        notification, and after each (re)connection for what was committed meanwhile."""
        import psycopg

        loop = asyncio.get_running_loop()
        lost = False
        while True:
            attempted_at = loop.time()
            try:
                connection = await psycopg.AsyncConnection.connect(
                    autocommit=True, **self._listener_kwargs()
                )
                try:
                    await connection.execute(f"LISTEN {EVENTS_CHANNEL}")
                    if lost:
                        _report("listening for events again")
                        lost = False
                    self._wake_all()
                    async for _notification in connection.notifies():
                        self._wake_all()
                finally:
                    await connection.close()
            except Exception as error:  # noqa: BLE001 - any failure: connect again
                if not lost:
                    _report(f"not listening for events ({describe_failure(error)}); reconnecting")
                    lost = True
            # A connection lost after a while is replaced at once; failing ones not in a loop.
            if loop.time() - attempted_at < self._retry_interval:
                await asyncio.sleep(self._retry_interval)

    def _listener_kwargs(self) -> dict[str, Any]:
        """The engine's own connection arguments (same server, same options), with a name to
        be recognised by and keepalives."""
        if self._listener_connect_kwargs is None:
            from mcp_agent.db.engine import POSTGRES_CONNECT_TIMEOUT_S

            engine = self._runtime.engine
            _args, kwargs = engine.dialect.create_connect_args(engine.url)
            self._listener_connect_kwargs = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                **_LISTENER_KEEPALIVES,
                **kwargs,
                "application_name": LISTENER_APPLICATION_NAME,
            }
        return self._listener_connect_kwargs

    async def _poll(self) -> None:
        """SQLite: wake the followers whenever the highest event id changed."""
        seen: int | None = None
        failing = False
        while True:
            try:
                newest = await self.latest_event_id()
            except Exception as error:  # noqa: BLE001 - followers retry their own reads
                if not failing:
                    _report(f"cannot look for new events ({describe_failure(error)})")
                    failing = True
            else:
                failing = False
                if newest != seen:
                    seen = newest
                    self._wake_all()
            await asyncio.sleep(self._poll_interval)


def _matcher(
    *, session_id: str | None, agent_name: str | None, min_level: str | None
) -> Callable[[EventRecord], bool]:
    """The filters of `event_conditions`, for events read once for every follower."""
    levels = frozenset(allowed_levels(min_level)) if min_level is not None else None

    def matches(record: EventRecord) -> bool:
        return (
            (session_id is None or record.session_id == session_id)
            and (agent_name is None or record.agent_name == agent_name)
            and (levels is None or record.level in levels)
        )

    return matches


def _retrieve_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _report(message: str) -> None:
    # Not through upstream's logger: a process that also captures events would feed them back.
    print(f"fast-agent-db: event feed: {message}", file=sys.stderr)

"""Capturing upstream's logging events into an event sink, batched off the turn's path.

Upstream's `AsyncEventBus.emit` awaits `transport.send_event(event)` inside each emitter's
own task, so a transport sees the emitter's context variables (session, execution, agent) where
a bus listener would not. `CapturingTransport` wraps the bus's transport: it filters, redacts,
tags and queues the event, then hands it to the wrapped transport unchanged. `EventWriter`
writes queued events in batches from a background task; while the database is unreachable,
batches go to spill files (events/spill.py), stored when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Awaitable
from datetime import UTC
from pathlib import Path
from typing import Any

from mcp_agent.db import run_context
from mcp_agent.db.conversations.codec import escape_nul
from mcp_agent.db.events.base import EventRecord, EventSink
from mcp_agent.db.events.failures import describe_failure, is_connectivity_failure
from mcp_agent.db.events.redaction import redact_event_data, redact_text
from mcp_agent.db.events.spill import (
    SPILL_ROOT_ENV,
    SpillFormatError,
    claim_spills,
    give_back,
    quarantine,
    read_spill,
    release,
    remove_replayed,
    spill_directory,
    write_spill,
)

__all__ = [
    "CLOSE_TIMEOUT_S",
    "SPILL_ROOT_ENV",
    "CapturingTransport",
    "EventWriter",
    "spill_directory",
    "to_record",
]

#: How long `EventWriter.close` waits for the database (seconds) before it spills the rest: a
#: run's exit must not hang on a database that neither answers nor fails (a lock held on
#: fa_events, a server that stopped answering mid-query). One PostgreSQL connect timeout fits.
CLOSE_TIMEOUT_S = 15.0


def to_record(event: Any, serializer: Any) -> EventRecord:
    """Our record of an upstream `Event`, redacted and tagged from the current context."""
    timestamp = event.timestamp
    # Upstream stamps events with naive local time.
    occurred_at = (timestamp if timestamp.tzinfo else timestamp.astimezone()).astimezone(UTC)
    data = redact_event_data(serializer(event.data)) if event.data else None
    inner = data.get("data") if isinstance(data, dict) else None
    agent = inner.get("agent_name") if isinstance(inner, dict) else None
    return EventRecord(
        occurred_at=occurred_at,
        level=event.type,
        namespace=event.namespace[:300],
        name=event.name,
        message=escape_nul(redact_text(str(event.message))),
        data=data,
        session_id=run_context.current_session.get(),
        execution_id=run_context.current_execution.get(),
        agent_name=(agent if isinstance(agent, str) else None) or run_context.current_agent.get(),
        trace_id=event.trace_id,
        span_id=event.span_id,
    )


class EventWriter:
    """Batches records into a sink from a background task; spills to disk while it fails.

    Nothing accepted is dropped: once `close` has returned (the exit path of a run, on Ctrl-C
    and SIGTERM too), every record `submit` took is in the sink or in a spill file, however
    many arrived. `close` waits for the database for at most `close_timeout` seconds; then
    the write under way is cancelled (its batch comes back to the queue) and the rest is
    spilled, stored by the next start. Memory is bounded: with `max_pending` records queued,
    a producer waits for the background writer while the database answers, and spills the
    oldest batch itself while it does not (only if the disk fails as well does the queue grow
    past the bound).
    A batch the database refuses for a reason other than connectivity would fail the same way
    forever: it is spilled and quarantined at once, with a message saying where and why.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        spill_dir: Path,
        batch_size: int = 2000,
        flush_interval: float = 0.5,
        max_pending: int = 10_000,
        retry_interval: float = 2.0,
        close_timeout: float = CLOSE_TIMEOUT_S,
    ) -> None:
        if batch_size < 1 or max_pending < 1:
            raise ValueError(
                f"batch_size and max_pending must be at least 1, got {batch_size}, {max_pending}"
            )
        self._sink = sink
        self._spill_dir = spill_dir
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self.max_pending = max_pending
        self._retry_interval = retry_interval
        #: The longest `close` waits for the database before it spills what is left.
        self.close_timeout = close_timeout
        self._pending: deque[EventRecord] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flush_lock = asyncio.Lock()
        self._overflow_lock = asyncio.Lock()
        #: While the sink is unreachable: when to try it again (monotonic clock).
        self._retry_at: float | None = None
        self._disk_failed = False
        #: Records stored through this writer, live or replayed from spill files.
        self.written = 0
        #: Of `written`, those replayed from spill files (this or other processes' files).
        self.replayed = 0
        #: Records written to spill files (stored later, by this or another process).
        self.spilled = 0
        #: Records of batches the sink refused for a reason other than connectivity.
        self.quarantined = 0
        #: The longest the queue has been (at most `max_pending`, unless the disk failed too).
        self.peak_pending = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, record: EventRecord) -> None:
        """Queue a record. No I/O while the queue has room; when it is full, waits for the
        writer, or spills the oldest batch while the database is unreachable."""
        while len(self._pending) >= self.max_pending:
            if not self._must_spill_overflow():
                self._room.clear()
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), self._retry_interval)
                if len(self._pending) < self.max_pending:
                    break
                # Still full: the writer is stuck on a slow database; spill, do not wait on.
            if not await self._spill_overflow():
                break  # the disk refuses too: keep the record rather than drop it
        self._pending.append(record)
        if len(self._pending) > self.peak_pending:
            self.peak_pending = len(self._pending)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def _must_spill_overflow(self) -> bool:
        """Whether a producer facing a full queue spills at once rather than waits: nothing
        would make room soon (sink unreachable, closing, no writer task), or it is the
        writer's own task (an event logged while writing)."""
        return (
            self._retry_at is not None
            or self._closing
            or self._task is None
            or self._task.done()
            or asyncio.current_task() is self._task
        )

    async def _spill_overflow(self) -> bool:
        """Spill the oldest batch if the queue is still full; False if the disk refused it."""
        async with self._overflow_lock:
            if len(self._pending) < self.max_pending:
                return True
            batch = self._take_batch()
            if await self._spill(batch):
                return True
            self._pending.extendleft(reversed(batch))
            return False

    async def start(self) -> None:
        await self._replay_spills()
        self._task = asyncio.create_task(self._run(), name="fast-agent-db events")

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as error:  # noqa: BLE001 - keep going; close() flushes anyway
                print(f"fast-agent-db: event writer: {describe_failure(error)}", file=sys.stderr)

    async def flush(self) -> None:
        """Store what is queued (spilling what the sink cannot take), then replay spill files
        unless the sink was found unreachable moments ago."""
        async with self._flush_lock:
            if not await self._drain():
                return
            if self._retry_at is None or time.monotonic() >= self._retry_at:
                await self._replay_spills()

    async def close(self) -> None:
        """Store or spill everything queued; safe to call on Ctrl-C and SIGTERM.

        The database gets at most `close_timeout` seconds (plus what its driver takes to end
        the statement then cut short); what it has not taken by then is spilled.

        A cancellation arriving meanwhile (a SIGTERM during a normal exit, which stops the run
        as Ctrl-C does) does not cut it short: it finishes, then the cancellation goes on.
        """
        self._closing = True
        self._wake.set()
        self._room.set()  # producers waiting for room spill themselves from now on
        closing = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await asyncio.wait([closing])
            raise

    async def _close(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.close_timeout
        answered = True
        if self._task is not None:
            # Let a flush under way finish rather than cancel it halfway through a batch, as
            # long as the database answers within the wait.
            try:
                answered = await self._until(deadline, self._task)
            except Exception as error:  # noqa: BLE001 - the final flush below still runs
                print(f"fast-agent-db: event writer: {describe_failure(error)}", file=sys.stderr)
            self._task = None
        # While the database is found unreachable, the queue goes to disk without another
        # try (which could cost a connect or busy timeout on the way out); the spill files
        # wait for the next start.
        if answered:
            answered = await self._until(deadline, self.flush())
        if answered and self._pending:
            # The disk refused them too: one last try of the database rather than none.
            self._retry_at = None
            answered = await self._until(deadline, self.flush())
        if not answered:
            why = (
                f"the database did not answer within {self.close_timeout:g} s of closing"
                if asyncio.get_running_loop().time() >= deadline
                else "storing events was cancelled on the way out"
            )
            print(
                f"fast-agent-db: {why}; {len(self._pending)} events are kept in "
                f"{self._spill_dir} until it answers",
                file=sys.stderr,
            )
            self._retry_at = time.monotonic() + self._retry_interval
            await self._drain()  # closing and "unreachable": spill only, no database
        if self._pending:
            print(
                f"fast-agent-db: {len(self._pending)} events could be neither stored nor "
                f"written to {self._spill_dir}; they are lost",
                file=sys.stderr,
            )

    @staticmethod
    async def _until(deadline: float, work: Awaitable[None]) -> bool:
        """Await `work` until `deadline` (the loop's clock); False if it was cut short then
        (or cancelled by someone else, as asyncio.run's shutdown does after a second Ctrl-C).

        Past the deadline it is cancelled, and its unwinding awaited: a batch it was writing
        goes back to the front of the queue, claimed spill files go back to their directory
        (the drivers end the statement: psycopg cancels it on the server, a locked SQLite
        gives up within its busy timeout). A batch whose commit the database had completed
        just as it was cancelled is stored once more by the next start, never lost.
        """
        task = asyncio.ensure_future(work)
        remaining = deadline - asyncio.get_running_loop().time()
        if not task.done() and remaining > 0:
            await asyncio.wait([task], timeout=remaining)
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        if task.cancelled():
            return False
        task.result()  # what it raised, if anything
        return True

    def _take_batch(self) -> list[EventRecord]:
        count = min(self._batch_size, len(self._pending))
        batch = [self._pending.popleft() for _ in range(count)]
        self._room.set()
        return batch

    async def _drain(self) -> bool:
        """Store or spill every queued record; False if the disk refused some (kept queued)."""
        while self._pending:
            batch = self._take_batch()
            retry_at = self._retry_at
            if retry_at is not None and (self._closing or time.monotonic() < retry_at):
                # Not tried again before the retry time: a down server can cost a connect
                # timeout per attempt, and a locked SQLite file its busy timeout.
                if not await self._spill(batch):
                    self._pending.extendleft(reversed(batch))
                    return False
                continue
            try:
                await self._sink.write(batch)
            except asyncio.CancelledError:
                self._pending.extendleft(reversed(batch))  # not written: back to the front
                raise
            except Exception as error:  # noqa: BLE001 - any failure: keep the events
                if not is_connectivity_failure(error):
                    await self._set_aside(batch, error)
                    continue
                self._note_unreachable(error)
                if not await self._spill(batch):
                    self._pending.extendleft(reversed(batch))
                    return False
                continue
            self.written += len(batch)
            self._retry_at = None
        return True

    async def _spill(self, batch: list[EventRecord]) -> bool:
        """Write `batch` to a new spill file; False if the disk refused it."""
        writing = asyncio.ensure_future(asyncio.to_thread(write_spill, self._spill_dir, batch))
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:
            # The thread cannot be stopped: wait for it, so the batch is known written or not.
            await asyncio.wait([writing])
            if writing.exception() is None:
                self.spilled += len(batch)
            else:
                self._pending.extendleft(reversed(batch))
            raise
        except OSError as error:
            if not self._disk_failed:
                self._disk_failed = True
                print(
                    f"fast-agent-db: cannot write events to {self._spill_dir} "
                    f"({describe_failure(error)}); keeping them in memory",
                    file=sys.stderr,
                )
            return False
        self._disk_failed = False
        self.spilled += len(batch)
        return True

    async def _set_aside(self, batch: list[EventRecord], error: Exception) -> None:
        reason = f"the database refused the batch ({describe_failure(error)})"
        try:
            path = await asyncio.to_thread(write_spill, self._spill_dir, batch)
            await asyncio.to_thread(quarantine, path, reason)
        except OSError as disk_error:
            print(
                f"fast-agent-db: {len(batch)} events lost: {reason}, and they cannot be "
                f"written to {self._spill_dir} ({describe_failure(disk_error)})",
                file=sys.stderr,
            )
            return
        self.quarantined += len(batch)

    def _note_unreachable(self, error: BaseException) -> None:
        if self._retry_at is None:
            # Not through upstream's logger: that would feed this writer again.
            print(
                f"fast-agent-db: the database is unreachable ({describe_failure(error)}); "
                f"events are kept in {self._spill_dir} until it answers",
                file=sys.stderr,
            )
        self._retry_at = time.monotonic() + self._retry_interval
        self._room.set()  # producers waiting for room spill themselves now

    async def _replay_spills(self) -> None:
        """Store spill files (any process's, and orphans of dead ones), oldest first.

        Each file goes in with its spill id in one transaction: a replay killed midway leaves
        nothing behind, and a file stored before is not stored again. Files that hold no
        events, or that the database refuses, are quarantined; on a connectivity failure the
        files go back for a later attempt.
        """
        claimed = await asyncio.to_thread(claim_spills, self._spill_dir)
        for index, path in enumerate(claimed):
            try:
                spill = await asyncio.to_thread(read_spill, path)
            except SpillFormatError as error:
                await asyncio.to_thread(quarantine, path, str(error))
                continue
            except FileNotFoundError:
                release(path)  # removed by someone else meanwhile
                continue
            try:
                stored = await self._sink.write_once(spill.spill_id, spill.records)
            except asyncio.CancelledError:
                await asyncio.to_thread(_give_back_all, claimed[index:])
                raise
            except Exception as error:  # noqa: BLE001 - sorted out below
                if is_connectivity_failure(error):
                    self._note_unreachable(error)
                    await asyncio.to_thread(_give_back_all, claimed[index:])
                    return
                reason = f"the database refused it ({describe_failure(error)})"
                await asyncio.to_thread(quarantine, path, reason)
                continue
            await asyncio.to_thread(remove_replayed, path)
            self._retry_at = None
            if stored:
                self.written += len(spill.records)
                self.replayed += len(spill.records)


def _give_back_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            give_back(path)


class CapturingTransport:
    """Wraps the event bus's transport: queue matching events, then pass every event on."""

    def __init__(self, inner: Any, writer: EventWriter, event_filter: Any) -> None:
        from mcp_agent.logging.json_serializer import JSONSerializer

        self.inner = inner
        self.writer = writer
        self.event_filter = event_filter
        self._serializer = JSONSerializer()

    async def send_event(self, event: Any) -> None:
        if self.event_filter.matches(event):
            try:
                record = to_record(event, self._serializer)
            except Exception as error:  # noqa: BLE001 - never break the emitter's turn
                print(
                    f"fast-agent-db: event not captured ({describe_failure(error)})",
                    file=sys.stderr,
                )
            else:
                await self.writer.submit(record)
        await self.inner.send_event(event)

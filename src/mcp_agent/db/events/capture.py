"""Capturing upstream's logging events into an event sink, batched off the turn's path.

Upstream's `AsyncEventBus.emit` awaits `transport.send_event(event)` inside each emitter's
own task, so a transport sees the emitter's context variables (session, execution, agent) where
a bus listener would not. `CapturingTransport` wraps the bus's transport: it filters, tags and
queues the event (no I/O), then hands it to the wrapped transport unchanged. `EventWriter`
writes queued events in batches from a background task; while the database is unreachable,
batches go to a local spill file, and spilled batches are written back when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_agent.db import run_context
from mcp_agent.db.conversations.codec import escape_nul
from mcp_agent.db.events.base import EventRecord, EventSink
from mcp_agent.db.settings.secrets import scrub

#: Where batches wait while the database is unreachable, per database.
SPILL_ROOT_ENV = "FAST_AGENT_DB_SPILL_DIR"


def spill_directory(database_url: str) -> Path:
    root = Path(os.environ.get(SPILL_ROOT_ENV) or Path.home() / ".fast-agent-db" / "spill")
    return root / hashlib.sha256(database_url.encode()).hexdigest()[:16]


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return escape_nul(scrub(value))
    if isinstance(value, dict):
        return {key: _scrubbed(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_scrubbed(entry) for entry in value]
    return value


def to_record(event: Any, serializer: Any) -> EventRecord:
    """Our record of an upstream `Event`, tagged from the current context."""
    timestamp = event.timestamp
    # Upstream stamps events with naive local time.
    occurred_at = (timestamp if timestamp.tzinfo else timestamp.astimezone()).astimezone(UTC)
    data = _scrubbed(serializer(event.data)) if event.data else None
    inner = data.get("data") if isinstance(data, dict) else None
    agent = inner.get("agent_name") if isinstance(inner, dict) else None
    return EventRecord(
        occurred_at=occurred_at,
        level=event.type,
        namespace=event.namespace[:300],
        name=event.name,
        message=escape_nul(scrub(str(event.message))),
        data=data,
        session_id=run_context.current_session.get(),
        execution_id=run_context.current_execution.get(),
        agent_name=(agent if isinstance(agent, str) else None) or run_context.current_agent.get(),
        trace_id=event.trace_id,
        span_id=event.span_id,
    )


class EventWriter:
    """Batches records into a sink from a background task; spills while the sink fails."""

    def __init__(
        self,
        sink: EventSink,
        *,
        spill_dir: Path,
        batch_size: int = 2000,
        flush_interval: float = 0.5,
    ) -> None:
        self._sink = sink
        self._spill_dir = spill_dir
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: deque[EventRecord] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flush_lock = asyncio.Lock()
        self.written = 0
        self.spilled = 0

    def submit(self, record: EventRecord) -> None:
        """Queue a record; never blocks, never does I/O."""
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def start(self) -> None:
        await self._replay_spills()
        self._task = asyncio.create_task(self._run(), name="fast-agent-db events")

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._flush_lock:
            while self._pending:
                batch = [
                    self._pending.popleft()
                    for _ in range(min(self._batch_size, len(self._pending)))
                ]
                try:
                    await self._sink.write(batch)
                    self.written += len(batch)
                except asyncio.CancelledError:
                    # Not written: back to the front of the queue for the final flush.
                    self._pending.extendleft(reversed(batch))
                    raise
                except Exception as error:  # noqa: BLE001 - any failure: keep the events
                    await asyncio.to_thread(self._spill, batch)
                    self.spilled += len(batch)
                    # Not through upstream's logger: that would feed this writer again.
                    print(f"fast-agent-db: events spilled to disk ({error!r})", file=sys.stderr)
                    return
            await self._replay_spills()

    async def close(self) -> None:
        """Write everything queued (or spill it); safe to call on Ctrl-C."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            # Let a flush under way finish rather than cancel it halfway through a batch.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def _spill(self, batch: list[EventRecord]) -> None:
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"events-{os.getpid()}.jsonl"
        with path.open("a", encoding="utf-8") as spill:
            for record in batch:
                values = record.as_dict()
                values["occurred_at"] = record.occurred_at.isoformat()
                spill.write(json.dumps(values, default=str) + "\n")

    async def _replay_spills(self) -> None:
        """Write spilled batches back, oldest first; any process may replay any spill.

        Each file goes back in one transaction, so a failure midway cannot duplicate events.
        """
        claimed = await asyncio.to_thread(self._claim_spills)
        for index, path in enumerate(claimed):
            records = await asyncio.to_thread(self._read_spill, path)
            try:
                await self._sink.write(records)
            except Exception:  # noqa: BLE001 - still unreachable: give the files back
                for unwritten in claimed[index:]:
                    await asyncio.to_thread(unwritten.rename, unwritten.with_suffix(".jsonl"))
                return
            self.written += len(records)
            await asyncio.to_thread(path.unlink)

    def _claim_spills(self) -> list[Path]:
        if not self._spill_dir.is_dir():
            return []
        claimed = []
        for path in sorted(self._spill_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
            target = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                path.rename(target)  # atomic: one process wins each file
            except FileNotFoundError:
                continue
            claimed.append(target)
        return claimed

    @staticmethod
    def _read_spill(path: Path) -> list[EventRecord]:
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                values = json.loads(line)
                values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
                records.append(EventRecord(**values))
        return records


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
                self.writer.submit(to_record(event, self._serializer))
            except Exception as error:  # noqa: BLE001 - never break the emitter's turn
                print(f"fast-agent-db: event not captured ({error!r})", file=sys.stderr)
        await self.inner.send_event(event)

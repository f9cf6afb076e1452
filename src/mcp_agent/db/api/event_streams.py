"""Server-sent event streams (text/event-stream): the framing, the app's one event feed, and
keep-alives while nothing happens.

Every stored event goes out as `id: <event_id>`, `event: log` and its JSON on one `data:`
line (JSON escapes line breaks, so one line always holds it). A client that reconnects sends
the last id it saw as `Last-Event-ID` and gets exactly the events after it (the feed's
guarantee, events/feed.py). A comment line every KEEPALIVE_INTERVAL_S keeps proxies and
clients from taking a quiet stream for a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from mcp_agent.db.api.json_documents import json_bytes
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.feed import EventFeed, StoredEvent

SSE_MEDIA_TYPE = "text/event-stream"
#: Seconds of silence after which a stream sends a comment (`: keep-alive`).
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE = b": keep-alive\n\n"
#: The SSE event name of a stored event.
LOG_EVENT = "log"


def sse_frame(data: Any, *, event: str, event_id: int | None = None) -> bytes:
    """One SSE event: its id (when it has one), its name, and `data` as JSON on one line."""
    head = f"id: {event_id}\nevent: {event}\n" if event_id is not None else f"event: {event}\n"
    return head.encode() + b"data: " + json_bytes(data) + b"\n\n"


def event_document(event_id: int, record: EventRecord) -> dict[str, Any]:
    """A stored event as the API shows it (the fields of `logs --json`)."""
    return {"event_id": event_id, **record.as_dict()}


def log_frame(event: StoredEvent) -> bytes:
    return sse_frame(
        event_document(event.event_id, event.record), event=LOG_EVENT, event_id=event.event_id
    )


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        frames,
        media_type=SSE_MEDIA_TYPE,
        headers={
            "Cache-Control": "no-cache",
            # nginx and others buffer responses unless told not to: a stream must flow.
            "X-Accel-Buffering": "no",
        },
    )


def app_event_feed(request: Request) -> EventFeed:
    """The app's one EventFeed (one per process serves every follower), made on first use.

    Nothing to close when the app stops: the feed listens or polls only while somebody
    follows, and every follower ends with its response.
    """
    state = request.app.state
    feed: EventFeed | None = getattr(state, "event_feed", None)
    if feed is None:
        feed = EventFeed(request.app.state.runtime)
        state.event_feed = feed
    return feed


def streams_stopping(app: Any) -> asyncio.Event:
    """Set when the server begins to stop (`stop_streams`): live streams end then."""
    stopping: asyncio.Event | None = getattr(app.state, "streams_stopping", None)
    if stopping is None:
        stopping = asyncio.Event()
        app.state.streams_stopping = stopping
    return stopping


def stop_streams(app: Any) -> None:
    """End the app's live event streams. A live stream never ends by itself, and a server
    waits for its open responses before it stops: `serve` calls this as it begins to stop.
    Runs in progress are not affected (their streams end with them)."""
    streams_stopping(app).set()


async def with_keepalives(
    events: AsyncGenerator[StoredEvent, None],
    *,
    stopping: asyncio.Event | None = None,
    interval: float | None = None,
) -> AsyncIterator[StoredEvent | None]:
    """The events of a feed follower, and None whenever `interval` seconds (default
    KEEPALIVE_INTERVAL_S) passed without one: time for a keep-alive. Ends when `stopping` is
    set; closes the follower when it ends or the caller stops.

    One pending `__anext__` is kept across the waits: cancelling it to wait with a time limit
    would end the follower (see EventFeed.follow).
    """
    interval = KEEPALIVE_INTERVAL_S if interval is None else interval
    stopped = asyncio.ensure_future((stopping or asyncio.Event()).wait())
    pending: asyncio.Future[StoredEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait(
                {pending, stopped}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if pending not in done:
                if stopped in done:
                    return
                yield None
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        stopped.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()

"""/v1/events: the event log, as `fast-agent-db logs`: a filtered query read backwards in
pages, and a live stream (`/v1/events/stream`, text/event-stream) that follows the log as it
is written.

The stream sends each event as `id: <event_id>`, `event: log`, and its JSON as `data:`. It
starts at the events written after it opened; a client that reconnects with `Last-Event-ID`
(browsers' EventSource does so by itself), or asks `?after=ID`, gets exactly the events after
that id: none twice, none missed (see events/feed.py for why one id is enough). PostgreSQL
pushes new events to the stream (LISTEN/NOTIFY); on SQLite the feed looks every 0.2 s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.event_streams import (
    KEEPALIVE,
    SSE_MEDIA_TYPE,
    app_event_feed,
    event_document,
    log_frame,
    sse_response,
    streams_stopping,
    with_keepalives,
)
from mcp_agent.db.api.json_documents import json_response
from mcp_agent.db.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    Page,
    decode_cursor,
    encode_cursor,
)
from mcp_agent.db.api.routers.executions import since_time
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.events.queries import read_events_before
from mcp_agent.db.limits import AGENT_NAME_MAX_LENGTH, BIGINT_RANGE, SESSION_ID_MAX_LENGTH
from mcp_agent.db.lookups import complete_logged_session_id, require_match
from mcp_agent.db.models.events import EventRow

router = APIRouter(prefix="/events", tags=["events"])

#: `level` keeps events at or above it; progress events count as debug (as upstream's filters).
Level = Literal["debug", "info", "warning", "error"]

SessionFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=SESSION_ID_MAX_LENGTH, description="Only this session."),
]
AgentFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=AGENT_NAME_MAX_LENGTH, description="Only this agent."),
]
LevelFilter = Annotated[Level | None, Query(description="Only events at or above this level.")]


class Event(BaseModel):
    """A stored event, as `logs --json` prints it."""

    event_id: int
    occurred_at: datetime
    level: str
    namespace: str
    message: str
    name: str | None = None
    #: The event's data, secrets redacted before it was stored.
    data: dict[str, Any] | None = None
    session_id: str | None = None
    execution_id: str | None = None
    agent_name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


async def _check_filters(runtime: Runtime, session: str | None, agent: str | None) -> None:
    """After a first page came back empty: a filter naming nothing is a typo (as `logs` says).

    Raises:
        InputError: naming `session` or `agent`, and what there is.
    """
    if session is not None:
        try:
            await complete_logged_session_id(runtime, session)
        except UnknownValueError as error:
            raise InputError("session", str(error)) from None
    if agent is not None:
        try:
            await require_match(runtime, EventRow.agent_name, agent, option="agent", where="event")
        except UnknownValueError as error:
            raise InputError("agent", str(error).removeprefix("agent ")) from None


@router.get("", response_model=Page[Event], summary="The event log, newest first")
async def list_events(
    runtime: Runtime,
    session: SessionFilter = None,
    agent: AgentFilter = None,
    level: LevelFilter = None,
    since: Annotated[
        str | None, Query(max_length=100, description="An age (90min, 24h, 7d) or an ISO time.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"At most {MAX_PAGE_SIZE}.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor`: older events."),
    ] = None,
) -> Response:
    """As `fast-agent-db logs`, newest first; `next_cursor` pages to older events. Follow what
    comes next with `GET /v1/events/stream`."""
    before = None
    if cursor is not None:
        key = decode_cursor(cursor, "events")
        if len(key) != 1 or not isinstance(key[0], int):
            raise InputError("cursor", "not a valid cursor; start without one")
        before = key[0]
    found = await read_events_before(
        runtime,
        before_event_id=before,
        limit=limit + 1,
        session_id=session,
        agent_name=agent,
        min_level=level,
        since=since_time(since),
    )
    if not found and before is None:
        await _check_filters(runtime, session, agent)
    page = found[:limit]
    next_cursor = encode_cursor("events", (page[-1][0],)) if len(found) > limit else None
    return json_response(
        {
            "items": [event_document(event_id, record) for event_id, record in page],
            "next_cursor": next_cursor,
        }
    )


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    """The id to follow from: the header a reconnecting client sends, else `after`.

    Raises:
        InputError: naming Last-Event-ID, when it is not an event id.
    """
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isdigit() or int(text) > BIGINT_RANGE[1]:
        raise InputError("Last-Event-ID", f"{text[:40]!r} is not an event id (a whole number)")
    return int(text)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {SSE_MEDIA_TYPE: {}},
            "description": "Events as they are stored: `id: <event_id>`, `event: log`, the "
            "event's JSON as `data`; a `: keep-alive` comment every 15 s of silence.",
        }
    },
    summary="Follow the event log live (server-sent events)",
)
async def stream_events(
    request: Request,
    session: SessionFilter = None,
    agent: AgentFilter = None,
    level: LevelFilter = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=BIGINT_RANGE[1],
            description="Start after this event id (Last-Event-ID, when sent, wins).",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=40,
            description="The last id received: the stream resumes right after it.",
        ),
    ] = None,
) -> StreamingResponse:
    """Filters as `GET /v1/events` (a session need not exist yet: a client may open the
    stream before it starts a run). Without an id to resume from, the stream begins with what
    is written after this request."""
    feed = app_event_feed(request)
    start = _resume_point(last_event_id, after)
    if start is None:
        # Taken now, not when the body is first iterated: whatever is written once the client
        # has the response's headers is in the stream.
        start = await feed.latest_event_id()
    following = feed.follow(start, session_id=session, agent_name=agent, min_level=level)

    stopping = streams_stopping(request.app)

    async def frames() -> Any:
        async for event in with_keepalives(following, stopping=stopping):
            yield KEEPALIVE if event is None else log_frame(event)

    return sse_response(frames())

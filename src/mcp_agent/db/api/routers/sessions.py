"""/v1/sessions: conversations, as `fast-agent-db sessions ...`, through the same conversation
store (create, list, show, messages, fork, export, delete).

A session is addressed by its whole id (the CLI's unique prefixes are a typing convenience;
a URL names one resource). Messages are read a page at a time, oldest first, each with both
histories: the provider-agnostic multipart message (`content`, upstream's
`PromptMessageMultipart`) and the provider-native messages it added (`provider_messages`,
OpenAI or Anthropic shapes, as the provider sent and received them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.json_documents import json_bytes, page_response
from mcp_agent.db.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    Page,
    decode_cursor,
    encode_cursor,
    timed_cursor,
)
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.conversations.base import SessionSummary
from mcp_agent.db.conversations.sql import (
    SessionOrder,
    SqlConversationStore,
    StoredMessageJson,
    make_session_id,
)
from mcp_agent.db.errors import InputError, SessionError, UnknownValueError
from mcp_agent.db.limits import (
    AGENT_NAME_MAX_LENGTH,
    SEQUENCE_RANGE,
    SESSION_ID_MAX_LENGTH,
    max_length,
)
from mcp_agent.db.models.conversations import SessionRow

router = APIRouter(prefix="/sessions", tags=["sessions"])

#: Messages per page at most: a long history in a few requests, while a page of messages
#: holding large parts (images, resources) stays a bounded response.
MAX_MESSAGE_PAGE_SIZE = 1000
DEFAULT_MESSAGE_PAGE_SIZE = 100
#: Ids a client chooses: characters a URL path carries as they are.
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]*$"

SessionId = Annotated[
    str,
    Path(min_length=1, max_length=SESSION_ID_MAX_LENGTH, description="The session's whole id."),
]
AgentFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="The agent; may be left out when the session has messages of one agent.",
    ),
]


async def conversation_store(runtime: Runtime) -> SqlConversationStore:
    return SqlConversationStore(runtime)


ConversationStore = Annotated[SqlConversationStore, Depends(conversation_store)]


# ---------------------------------------------------------------------------------------------
# Documents


class Session(BaseModel):
    """A session, as `sessions list --json` lists it."""

    session_id: str
    created_at: datetime
    updated_at: datetime
    #: The session it branched from, and the last message of it the branch shares.
    parent_session_id: str | None = None
    branch_point_message_id: int | None = None
    #: Messages stored in this session by agent (a branch's inherited ones not counted).
    message_counts: dict[str, int] = Field(default_factory=dict)


class SessionDetail(Session):
    #: Agents with messages the session sees, inherited ones included: the `agent` values its
    #: messages and export take.
    agents: list[str] = Field(default_factory=list)


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=SESSION_ID_MAX_LENGTH,
        pattern=SESSION_ID_PATTERN,
        description="The id to give it (default: a new 16-hex-digit id).",
    )
    app_name: str | None = Field(
        default=None, min_length=1, max_length=max_length(SessionRow.app_name)
    )


class ForkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: int = Field(
        ge=SEQUENCE_RANGE[0],
        le=SEQUENCE_RANGE[1],
        description="The last message (its sequence, of `agent`) the branch shares.",
    )
    agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="Whose sequence `at` is; may be left out when the session has one agent.",
    )
    new_session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=SESSION_ID_MAX_LENGTH,
        pattern=SESSION_ID_PATTERN,
        description="The branch's id (default: a new one).",
    )


class Message(BaseModel):
    """One stored message with both histories."""

    message_id: int
    #: The session that holds the row: a branch's inherited messages are its ancestor's.
    session_id: str
    agent_name: str
    #: Its place in the agent's history (1, 2, ...): strict and gap-free.
    sequence: int
    role: str
    #: Upstream's PromptMessageMultipart: text, images, resources.
    content: dict[str, Any]
    #: The provider-native messages this message added to the provider's history (tool calls
    #: and their results among them); null when the model keeps none (passthrough).
    provider_messages: list[Any] | None = None
    provider: str | None = None
    model: str | None = None
    created_at: datetime


class DeletedSession(BaseModel):
    session_id: str
    #: How many messages went (or would go, with dry_run).
    messages: int
    deleted: bool


def _session(summary: SessionSummary) -> Session:
    return Session(
        session_id=summary.session_id,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
        parent_session_id=summary.parent_session_id,
        branch_point_message_id=summary.branch_point_message_id,
        message_counts=summary.message_counts,
    )


def _message_json(message: StoredMessageJson) -> bytes:
    """A Message as JSON, its histories spliced in as the store read them (json_documents
    says why pages are not built as models)."""
    head = json_bytes(
        {
            "message_id": message.message_id,
            "session_id": message.session_id,
            "agent_name": message.agent_name,
            "sequence": message.sequence,
            "role": message.role,
            "provider": message.provider,
            "model": message.model,
            "created_at": message.created_at,
        }
    )
    return b"".join(
        (
            head[:-1],
            b',"content":',
            message.content_json.encode(),
            b',"provider_messages":',
            message.provider_messages_json.encode(),
            b"}",
        )
    )


# ---------------------------------------------------------------------------------------------
# Lookups shared by the routes (and by runs)


async def require_session(store: SqlConversationStore, session_id: str) -> None:
    """Raises:
    UnknownValueError: no session has this id (a 404)."""
    if not await store.has_session(session_id):
        raise UnknownValueError(f"no session {session_id!r}")


async def session_agent(
    store: SqlConversationStore, session_id: str, agent_name: str | None, *, field: str
) -> str | None:
    """The agent named (which must have messages in the session), or the session's only
    agent; None for a session with no messages yet.

    Raises:
        UnknownValueError: no such session.
        InputError: naming `field`: the agent has no messages there, or several agents do
            and none was named.
    """
    try:
        agents = await store.agents(session_id)
    except SessionError:
        if not await store.has_session(session_id):
            raise UnknownValueError(f"no session {session_id!r}") from None
        raise
    if agent_name is not None:
        if agent_name not in agents:
            raise InputError(
                field,
                f"session {session_id!r} has no messages of agent {agent_name!r} "
                f"(its agents: {', '.join(agents) or 'none'})",
            )
        return agent_name
    if len(agents) > 1:
        raise InputError(field, f"session {session_id!r} has agents {', '.join(agents)}: name one")
    return agents[0] if agents else None


# ---------------------------------------------------------------------------------------------
# Routes


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionDetail,
    responses=problem_responses(409),
    summary="Create a session",
)
async def create_session(store: ConversationStore, body: NewSession) -> SessionDetail:
    """A new, empty session; runs (`POST /v1/sessions/{id}/runs`) then continue it. An id that
    exists already is a 409."""
    session_id = body.session_id or make_session_id()
    if not await store.ensure_session(session_id, app_name=body.app_name):
        raise SessionError(f"session {session_id!r} exists already")
    return SessionDetail(**_session(await store.summary(session_id)).model_dump())


@router.get("", response_model=Page[Session], summary="List sessions, newest first")
async def list_sessions(
    store: ConversationStore,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"At most {MAX_PAGE_SIZE}.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    order: Annotated[
        SessionOrder,
        Query(
            description="`updated`: by last activity (as `sessions list`); `created`: by "
            "creation, which a session's new messages never move."
        ),
    ] = "updated",
    agent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=AGENT_NAME_MAX_LENGTH,
            description="Only sessions with messages of this agent.",
        ),
    ] = None,
    parent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=SESSION_ID_MAX_LENGTH,
            description="Only the branches of this session.",
        ),
    ] = None,
) -> Page[Session]:
    """Sessions newest first. With `order=updated` a session that gets a message while you
    page moves to the front: it is not shown twice, but the pass under way does not see it
    again."""
    list_name = f"sessions:{order}"
    before = None if cursor is None else timed_cursor(cursor, list_name)
    found = await store.list_sessions(
        limit=limit + 1, order=order, before=before, agent_name=agent, parent_session_id=parent
    )
    items = [_session(summary) for summary in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        at = last.updated_at if order == "updated" else last.created_at
        next_cursor = encode_cursor(list_name, (at.isoformat(), last.session_id))
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{session_id}",
    response_model=SessionDetail,
    responses=problem_responses(404),
    summary="A session",
)
async def get_session(store: ConversationStore, session_id: SessionId) -> SessionDetail:
    try:
        summary = await store.summary(session_id)
    except SessionError:
        raise UnknownValueError(f"no session {session_id!r}") from None
    return SessionDetail(**_session(summary).model_dump(), agents=await store.agents(session_id))


@router.get(
    "/{session_id}/messages",
    response_model=Page[Message],
    responses=problem_responses(404),
    summary="An agent's messages in the session, oldest first",
)
async def list_messages(
    store: ConversationStore,
    session_id: SessionId,
    agent: AgentFilter = None,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_MESSAGE_PAGE_SIZE, description=f"At most {MAX_MESSAGE_PAGE_SIZE}."),
    ] = DEFAULT_MESSAGE_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
) -> Response:
    """The history `sessions show` prints, a page at a time: a branch's inherited messages
    first. Pages follow the sequence, so messages appended while you page come on a later
    page, none twice."""
    agent_name = agent
    if agent_name is None:
        agent_name = await session_agent(store, session_id, None, field="agent")
        if agent_name is None:
            return page_response([], None)
    list_name = f"messages:{session_id}:{agent_name}"
    after = 0
    if cursor is not None:
        key = decode_cursor(cursor, list_name)
        if len(key) != 1 or not isinstance(key[0], int):
            raise InputError("cursor", "not a valid cursor; start without one")
        after = key[0]
    found = await store.load_page_json(
        session_id, agent_name, after_sequence=after, limit=limit + 1
    )
    if not found:
        # Said only now, so that a page pays for no lookup: an unknown session (404) or an
        # agent without messages there (422) rather than an empty page.
        await session_agent(store, session_id, agent_name, field="agent")
    page = found[:limit]
    next_cursor = (
        encode_cursor(list_name, (page[-1].sequence,)) if len(found) > limit and page else None
    )
    return page_response([_message_json(message) for message in page], next_cursor)


@router.post(
    "/{session_id}/fork",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionDetail,
    responses=problem_responses(404, 409),
    summary="Branch the session at a message",
)
async def fork_session(
    store: ConversationStore, session_id: SessionId, body: ForkRequest
) -> SessionDetail:
    """A new session sharing this one's history, every agent's, up to message `at` of `agent`
    (no rows copied); as `sessions fork ID --at SEQ`."""
    agent_name = await session_agent(store, session_id, body.agent, field="agent")
    if agent_name is None:
        raise InputError("at", f"session {session_id!r} has no messages to branch at")
    point = await store.load_page(session_id, agent_name, after_sequence=body.at - 1, limit=1)
    if not point or point[0].sequence != body.at:
        raise InputError("at", f"agent {agent_name!r} has no message {body.at} in {session_id!r}")
    if body.new_session_id is not None and await store.has_session(body.new_session_id):
        raise SessionError(f"session {body.new_session_id!r} exists already")
    child = await store.fork(
        session_id, at_sequence=body.at, agent_name=agent_name, new_session_id=body.new_session_id
    )
    summary = await store.summary(child)
    return SessionDetail(**_session(summary).model_dump(), agents=await store.agents(child))


@router.get(
    "/{session_id}/export",
    responses={
        **problem_responses(404),
        200: {
            "content": {"application/json": {}},
            "description": "Upstream's history JSON (load it with load_prompt_multipart).",
        },
    },
    summary="An agent's history as upstream's history JSON",
)
async def export_session(
    store: ConversationStore, session_id: SessionId, agent: AgentFilter = None
) -> Response:
    """What `sessions export` writes: the multipart messages in upstream's own JSON format."""
    from mcp_agent.mcp.prompt_serialization import multipart_messages_to_json

    agent_name = await session_agent(store, session_id, agent, field="agent")
    history = [] if agent_name is None else await store.load(session_id, agent_name)
    filename = f"{session_id}-{agent_name}.json" if agent_name else f"{session_id}.json"
    return Response(
        content=multipart_messages_to_json([message.content for message in history]),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete(
    "/{session_id}",
    response_model=DeletedSession,
    responses=problem_responses(404, 409),
    summary="Delete a session and its messages",
)
async def delete_session(
    store: ConversationStore,
    session_id: SessionId,
    dry_run: Annotated[
        bool, Query(description="Only say how many messages it would delete.")
    ] = False,
) -> DeletedSession:
    """Refused (409) while branches share its history, as `sessions delete`."""
    await require_session(store, session_id)
    removed = await store.delete(session_id, apply=not dry_run)
    return DeletedSession(session_id=session_id, messages=removed, deleted=not dry_run)

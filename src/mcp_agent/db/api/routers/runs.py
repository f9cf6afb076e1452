"""POST /v1/sessions/{id}/runs: send a message to an agent or workflow defined in the database,
in this process, as `fast-agent-db run AGENT -m MESSAGE --session ID` does: the session's
histories restored, every call recorded as an execution with its usage, the turn stored, the
run's events written to the event log. The answer is the reply; with `"stream": true` it is a
text/event-stream of the run's events (`event: log`, each with `id: <event_id>`) ending with
the reply (`event: reply`) or the problem that stopped the run (`event: error`).

Concurrency: one run at a time per app, the others waiting their turn in arrival order, at
most MAX_WAITING_RUNS of them (FAST_AGENT_DB_API_MAX_WAITING_RUNS); a run beyond that is
refused at once with a 429 and Retry-After, before anything starts. One at a time because
upstream keeps a run's logging and application context process-wide: the event bus a run's
events travel on is stopped when any run ends, so two runs in one process would lose each
other's events. Serve more runs at once with more processes on the same database (sessions
take a row lock per append, so they can share sessions safely).

A run that has started finishes even if its client goes away: its reply is stored in the
session (GET /v1/sessions/{id}/messages) and its execution in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from mcp_agent.db.api import event_streams
from mcp_agent.db.api.dependencies import DefinitionStore, Runtime
from mcp_agent.db.api.event_streams import (
    KEEPALIVE,
    SSE_MEDIA_TYPE,
    app_event_feed,
    log_frame,
    sse_frame,
    sse_response,
)
from mcp_agent.db.api.problems import Problem, problem_response, problem_responses, problem_type
from mcp_agent.db.api.routers.executions import Execution, execution_document
from mcp_agent.db.api.routers.sessions import ConversationStore, SessionId, require_session
from mcp_agent.db.errors import InputError
from mcp_agent.db.events.feed import StoredEvent
from mcp_agent.db.events.queries import read_events
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.limits import AGENT_NAME_MAX_LENGTH, MODEL_NAME_MAX_LENGTH
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.agent_runs import RunFailedError, run_stored_agent
from mcp_agent.db.runtime import DatabaseRuntime

router = APIRouter(prefix="/sessions", tags=["runs"])
logger = logging.getLogger("mcp_agent.db.api")

#: Runs that may wait for the one running (FAST_AGENT_DB_API_MAX_WAITING_RUNS changes it).
MAX_WAITING_RUNS = int(os.environ.get("FAST_AGENT_DB_API_MAX_WAITING_RUNS", "16"))
#: What a 429 tells the client to wait before trying again (seconds).
RETRY_AFTER_S = 5

_T = TypeVar("_T")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(
        min_length=1,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="The agent or workflow to run (a definition in the database).",
    )
    message: str = Field(min_length=1, description="The message to send.")
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=MODEL_NAME_MAX_LENGTH,
        description="Model for agents whose definition names none (as `run --model`).",
    )
    stream: bool = Field(
        default=False,
        description="Answer with a text/event-stream of the run's events, then the reply.",
    )


class RunReply(BaseModel):
    session_id: str
    agent: str
    reply: str
    #: The run's call with its totals (tokens, cost); GET /v1/executions/{id} gives its tree.
    execution: Execution | None = None


# ---------------------------------------------------------------------------------------------
# One run at a time


class RunQueue:
    """The runs of one app: one at a time, in arrival order, at most `max_waiting` waiting."""

    def __init__(self, max_waiting: int = MAX_WAITING_RUNS) -> None:
        self.max_waiting = max_waiting
        self._turn = asyncio.Lock()
        self._admitted = 0
        #: Runs in progress or waiting, held so none is collected while its client is gone.
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Callable[[], Coroutine[Any, Any, _T]]) -> asyncio.Task[_T]:
        """Queue `work()`; its task. The coroutine is made only once admitted.

        Raises:
            HTTPException: 429, when `max_waiting` runs wait already.
        """
        if self._admitted > self.max_waiting:
            raise HTTPException(
                429,
                f"{self._admitted} runs are running or waiting (at most one runs at a time, "
                f"{self.max_waiting} wait); try again later.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._admitted += 1
        task = asyncio.create_task(self._in_turn(work()), name="fast-agent-db API run")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    async def _in_turn(self, work: Coroutine[Any, Any, _T]) -> _T:
        try:
            async with self._turn:
                return await work
        finally:
            self._admitted -= 1

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieved here too, so a run whose client left logs no "never retrieved" warning.
        if not task.cancelled() and task.exception() is not None:
            logger.info("a run ended with an error: %s", task.exception())


async def run_queue(request: Request) -> RunQueue:
    """The app's RunQueue, made on first use."""
    queue: RunQueue | None = getattr(request.app.state, "run_queue", None)
    if queue is None:
        queue = RunQueue()
        request.app.state.run_queue = queue
    return queue


Runs = Annotated[RunQueue, Depends(run_queue)]


# ---------------------------------------------------------------------------------------------
# A run


async def _run_execution(
    runtime: DatabaseRuntime, session_id: str, agent: str, started_at: datetime
) -> dict[str, Any] | None:
    """The root execution the run recorded: the newest call of `agent` in the session that
    started after the run did (runs of one app take turns)."""
    found = await SqlExecutionStore(runtime).roots_page(
        limit=1, session_id=session_id, agent_name=agent
    )
    if not found or found[0].started_at < started_at:
        return None
    return execution_document(found[0])


def _failure_problem(request: Request, error: RunFailedError) -> dict[str, Any]:
    return Problem(
        type=problem_type("run-failed"),
        title="Bad Gateway",
        status=502,
        detail=error.detail,
        instance=request.url.path,
    ).model_dump(mode="json")


# ---------------------------------------------------------------------------------------------
# Routes


@router.post(
    "/{session_id}/runs",
    response_model=RunReply,
    responses={
        **problem_responses(404, 409, 429, 502),
        200: {
            "content": {SSE_MEDIA_TYPE: {}},
            "description": "The reply; with `stream`, the run's events then the reply (SSE).",
        },
    },
    summary="Run an agent on a message in the session",
)
async def run_agent(
    request: Request,
    runtime: Runtime,
    conversations: ConversationStore,
    definitions: DefinitionStore,
    runs: Runs,
    session_id: SessionId,
    body: RunRequest,
) -> Any:
    """Send `message` to `agent` (a definition in the database) with the session's history,
    and answer with its reply; see the module's notes on streaming and concurrency. A run that
    fails is a 502 problem naming why (`run-failed`)."""
    await require_session(conversations, session_id)
    if not await definitions.current([body.agent]):
        known = sorted(await definitions.current())
        raise InputError(
            "agent",
            f"no agent or workflow {body.agent!r} is defined "
            f"(there are: {', '.join(known) or 'none'})",
        )
    started_at = utc_now()

    def work() -> Coroutine[Any, Any, str]:
        return run_stored_agent(runtime.raw_url, session_id, body.agent, body.message, body.model)

    if not body.stream:
        task = runs.start(work)
        try:
            # Shielded: a client that goes away does not stop the run (see the module).
            reply = await asyncio.shield(task)
        except RunFailedError as error:
            return problem_response(request, 502, kind="run-failed", detail=error.detail)
        execution = await _run_execution(runtime, session_id, body.agent, started_at)
        return RunReply(
            session_id=session_id,
            agent=body.agent,
            reply=reply,
            execution=None if execution is None else Execution(**execution),
        )

    feed = app_event_feed(request)
    after_event_id = await feed.latest_event_id()
    task = runs.start(work)
    return sse_response(
        _run_frames(request, runtime, task, session_id, body.agent, after_event_id, started_at)
    )


async def _run_frames(
    request: Request,
    runtime: DatabaseRuntime,
    task: asyncio.Task[str],
    session_id: str,
    agent: str,
    after_event_id: int,
    started_at: datetime,
) -> AsyncIterator[bytes]:
    """The stream of a run: `run` (what started), each event of the session as it is stored
    (`log`), then `reply` or `error`.

    Events arrive from the feed while the run goes; once it has ended (its events are all
    stored by then: the run's writer closes before its run does), whatever the feed has not
    delivered yet is read after the last id sent, so none is missed or sent twice.
    """
    yield sse_frame({"session_id": session_id, "agent": agent}, event="run")
    feed = app_event_feed(request)
    arrived: asyncio.Queue[StoredEvent] = asyncio.Queue()

    async def pump() -> None:
        following = feed.follow(after_event_id, session_id=session_id)
        async with contextlib.aclosing(following) as events:
            async for event in events:
                await arrived.put(event)

    pumping = asyncio.create_task(pump(), name="fast-agent-db API run events")
    last_sent = after_event_id
    try:
        while True:
            getting = asyncio.ensure_future(arrived.get())
            done, _ = await asyncio.wait(
                {getting, task},
                timeout=event_streams.KEEPALIVE_INTERVAL_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getting in done:
                event = getting.result()
                last_sent = event.event_id
                yield log_frame(event)
                continue
            getting.cancel()  # an item it had not taken stays queued
            if task.done():
                break
            yield KEEPALIVE
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
    for event_id, record in await read_events(
        runtime, session_id=session_id, after_event_id=last_sent
    ):
        yield log_frame(StoredEvent(event_id, record))
    try:
        reply = task.result()
    except RunFailedError as error:
        yield sse_frame(_failure_problem(request, error), event="error")
        return
    except Exception as error:  # noqa: BLE001 - the stream has begun: said as its last event
        logger.error("a streamed run failed", exc_info=error)
        yield sse_frame(
            Problem(
                type=problem_type("internal"),
                title="Internal Server Error",
                status=500,
                detail="The run stopped on an unexpected error; the server's log has the details.",
                instance=request.url.path,
            ).model_dump(mode="json"),
            event="error",
        )
        return
    execution = await _run_execution(runtime, session_id, agent, started_at)
    yield sse_frame(
        RunReply(
            session_id=session_id,
            agent=agent,
            reply=reply,
            execution=None if execution is None else Execution(**execution),
        ).model_dump(mode="json"),
        event="reply",
    )

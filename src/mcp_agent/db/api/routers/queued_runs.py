"""/v1/runs: durable runs over HTTP, as `fast-agent-db runs submit|list|show|cancel|wait`,
through the same run store (runs/sql.py).

A submitted run is a row in the database's queue: `fast-agent-db worker` processes (on this
machine or others) claim and execute it, so the answer to a submit is 202 with the queued run
and its Location, never the reply. The client polls `GET /v1/runs/{id}` (with `?wait=S` it
is answered as soon as the run ends, or after S seconds) or gives a `webhook_url` to be told.

`POST /v1/sessions/{id}/runs` (routers/runs.py) is the other way to run: in this server's
process, the reply in the answer.

Idempotency keys are per caller, and the caller is the API token (`api:<token name>`, as
changes are recorded): a retried submit with the same key is a 409 naming the run it made,
and a key another token used is that token's own.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    Page,
    encode_cursor,
    timed_cursor,
)
from mcp_agent.db.api.problems import FieldProblem, problem_response, problem_responses
from mcp_agent.db.api.routers.executions import require_filter_match
from mcp_agent.db.api.routers.sessions import SESSION_ID_PATTERN
from mcp_agent.db.errors import (
    DuplicateRunError,
    InputError,
    RunEndedError,
    UnknownValueError,
)
from mcp_agent.db.limits import (
    AGENT_NAME_MAX_LENGTH,
    INTEGER_MAX,
    MODEL_NAME_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
)
from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.runs.base import ENDED_STATUSES, Run, RunStatus, RunSubmission
from mcp_agent.db.runs.pages import runs_page
from mcp_agent.db.runs.sql import SqlRunStore

router = APIRouter(prefix="/runs", tags=["durable runs"])

#: The longest a `GET /v1/runs/{id}?wait=` is held open: under the usual idle timeouts of
#: proxies (60 s), so a long-poll ends with an answer rather than a dropped connection.
MAX_WAIT_S = 50.0
#: Long-polls held open at once per app: on PostgreSQL each holds a LISTEN connection of its
#: own, so beyond this a `?wait=` is answered at once with the run as it is (the client polls
#: again). FAST_AGENT_DB_API_MAX_WAITS changes it.
MAX_WAITS = int(os.environ.get("FAST_AGENT_DB_API_MAX_WAITS", "32"))
#: A run's id is a UUID: addressed whole (the CLI's prefixes are a typing convenience).
RUN_ID_LENGTH = 36
_KEY_MAX_LENGTH = RunRow.__table__.c.idempotency_key.type.length
_URL_MAX_LENGTH = 2000
#: The names RunSubmission's checks give fields, as this API's body names them.
_BODY_FIELDS = {
    "session": "session_id",
    "webhook": "webhook_url",
    "webhook_secret": "webhook_secret_ref",
}

RunId = Annotated[
    str,
    Path(min_length=1, max_length=RUN_ID_LENGTH, description="The run's id (the whole UUID)."),
]


async def run_store(runtime: Runtime) -> SqlRunStore:
    return SqlRunStore(runtime)


RunStore = Annotated[SqlRunStore, Depends(run_store)]


class RunRequest(BaseModel):
    """A run to queue."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(
        min_length=1,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="The agent or workflow to run (a definition in the database).",
    )
    message: str = Field(min_length=1, description="The message to send.")
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=SESSION_ID_MAX_LENGTH,
        pattern=SESSION_ID_PATTERN,
        description="The session to continue (made when new); default: a new session.",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=MODEL_NAME_MAX_LENGTH,
        description="Model for agents whose definition names none (as `run --model`).",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=_KEY_MAX_LENGTH,
        description="A key of yours: a submit repeating it is refused (409) naming the run it "
        "made. The Idempotency-Key header does the same.",
    )
    deadline: AwareDatetime | None = Field(
        default=None,
        description="When the run fails if it has not ended (ISO 8601 with a time zone; in "
        "the future).",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=INTEGER_MAX,
        description="Attempts before the run fails (a retried provider error, a lost worker).",
    )
    webhook_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=_URL_MAX_LENGTH,
        description="POSTed (signed) when the run ends: an http(s) URL without credentials.",
    )
    webhook_secret_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Where the workers read the webhook's signing secret: `env:NAME` (default "
        "env:FAST_AGENT_DB_WEBHOOK_SECRET). Never the secret itself.",
    )


class RunDocument(BaseModel):
    """A run as stored: its state, attempts, lease and result."""

    run_id: str
    agent_name: str
    #: The session it continues (null once that session was deleted).
    session_id: str | None = None
    message: str
    model: str | None = None
    #: queued, running, completed, failed or cancelled.
    status: RunStatus
    attempts: int
    max_attempts: int
    #: Who submitted it: `api:<token name>`, `cli`, `library`.
    caller: str
    idempotency_key: str | None = None
    #: Not claimed before this (a retry's backoff).
    not_before: datetime
    deadline: datetime | None = None
    #: The worker (`host:pid`) holding it while it runs, and until when.
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: The reply, once completed.
    result: str | None = None
    #: Why it failed (or why its last attempt did, while it is retried).
    error: str | None = None


def run_document(run: Run) -> RunDocument:
    return RunDocument(
        run_id=run.run_id,
        agent_name=run.agent_name,
        session_id=run.session_id,
        message=run.message,
        model=run.model,
        status=run.status,
        attempts=run.attempts,
        max_attempts=run.max_attempts,
        caller=run.caller,
        idempotency_key=run.idempotency_key,
        not_before=run.not_before,
        deadline=run.deadline,
        lease_owner=run.lease_owner,
        lease_expires_at=run.lease_expires_at,
        cancel_requested_at=run.cancel_requested_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        result=run.result,
        error=run.error,
    )


def run_location(request: Request, run_id: str) -> str:
    """The run's URL path, under the prefix this router is mounted at."""
    return request.url.path.rsplit("/runs", 1)[0] + f"/runs/{run_id}"


async def whole_run(store: SqlRunStore, run_id: str) -> Run:
    """The run with exactly this id (a URL names one run: no prefixes).

    Raises:
        UnknownValueError: no run has it (a 404).
    """
    try:
        run = await store.get(run_id)
    except UnknownValueError:
        raise UnknownValueError(f"no run {run_id!r}") from None
    if run.run_id != run_id:
        raise UnknownValueError(f"no run {run_id!r}")
    return run


def _checked_deadline(deadline: datetime | None) -> datetime | None:
    """The deadline in UTC, as stored.

    Raises:
        InputError: naming `deadline`, when it is out of the range a time can be stored in.
    """
    if deadline is None:
        return None
    try:
        return deadline.astimezone(UTC)
    except OverflowError:
        raise InputError("deadline", f"{deadline.isoformat()} is out of range") from None


def _key_of(body: RunRequest, header: str | None) -> tuple[str | None, str]:
    """The idempotency key and where it came from (body or header).

    Raises:
        InputError: both given, and different.
    """
    if header is not None and body.idempotency_key is not None:
        if header != body.idempotency_key:
            raise InputError(
                "idempotency_key",
                "the body's idempotency_key and the Idempotency-Key header differ; give one",
            )
    if header is not None:
        return header, "header"
    return body.idempotency_key, "body"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunDocument,
    responses={
        **problem_responses(409),
        202: {
            "description": "Queued: the run, with its URL in Location.",
            "headers": {
                "Location": {"description": "The run's URL.", "schema": {"type": "string"}}
            },
        },
    },
    summary="Queue a run for the workers",
)
async def submit_run(
    request: Request,
    response: Response,
    store: RunStore,
    caller: Caller,
    body: RunRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=_KEY_MAX_LENGTH,
            description="As the body's idempotency_key.",
        ),
    ] = None,
) -> RunDocument | JSONResponse:
    """Queue a run of a stored agent or workflow on a message; `fast-agent-db worker`
    processes execute it. Anything wrong (an unknown agent, a deadline not in the future, a
    bad webhook URL) is a 422 naming the field, and nothing is queued; a repeated idempotency
    key is a 409 naming the run it made (Location: that run)."""
    key, key_location = _key_of(body, idempotency_key)
    submission = RunSubmission(
        agent_name=body.agent,
        message=body.message,
        session_id=body.session_id,
        model=body.model,
        caller=caller.audit_name,
        idempotency_key=key,
        deadline=_checked_deadline(body.deadline),
        max_attempts=body.max_attempts,
        webhook_url=body.webhook_url,
        webhook_secret_ref=body.webhook_secret_ref,
    )
    try:
        run = await store.submit(submission)
    except InputError as error:
        field = _BODY_FIELDS.get(error.field, error.field)
        raise InputError(field, error.reason) from None
    except UnknownValueError as error:
        # The agent is a field of the body: a bad value in it, not a missing resource.
        raise InputError("agent", str(error)) from None
    except DuplicateRunError as duplicate:
        return problem_response(
            request,
            409,
            kind="duplicate-run",
            detail=str(duplicate),
            errors=[
                FieldProblem(
                    field="Idempotency-Key" if key_location == "header" else "idempotency_key",
                    location=key_location,
                    detail=f"already used for run {duplicate.existing_run_id}",
                )
            ],
            headers={"Location": run_location(request, duplicate.existing_run_id)},
        )
    response.headers["Location"] = run_location(request, run.run_id)
    return run_document(run)


@router.get("", response_model=Page[RunDocument], summary="List runs, newest first")
async def list_runs(
    runtime: Runtime,
    caller: Caller,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"At most {MAX_PAGE_SIZE}.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    run_status: Annotated[
        RunStatus | None, Query(alias="status", description="Only runs in this state.")
    ] = None,
    agent: Annotated[
        str | None,
        Query(min_length=1, max_length=AGENT_NAME_MAX_LENGTH, description="Only this agent."),
    ] = None,
    session: Annotated[
        str | None,
        Query(min_length=1, max_length=SESSION_ID_MAX_LENGTH, description="Only this session."),
    ] = None,
    mine: Annotated[bool, Query(description="Only runs this token submitted.")] = False,
) -> Page[RunDocument]:
    """Runs of every caller (or, with `mine`, this token's), as `runs list`. An agent or
    session filter that names nothing is a 422 saying so."""
    before = None if cursor is None else timed_cursor(cursor, "runs")
    found = await runs_page(
        runtime,
        limit=limit + 1,
        before=before,
        status=run_status,
        agent_name=agent,
        session_id=session,
        caller=caller.audit_name if mine else None,
    )
    if not found and before is None:
        await require_filter_match(runtime, RunRow.agent_name, agent, field="agent", where="run")
        await require_filter_match(
            runtime, RunRow.session_id, session, field="session", where="run"
        )
    items = [run_document(run) for run in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = encode_cursor("runs", (last.created_at.isoformat(), last.run_id))
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{run_id}",
    response_model=RunDocument,
    responses=problem_responses(404),
    summary="A run: its state, attempts and result (optionally waiting for its end)",
)
async def get_run(
    request: Request,
    store: RunStore,
    run_id: RunId,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Answer as soon as the run has ended, or after this many seconds "
            f"with the run as it is then (long-poll; at most {MAX_WAIT_S:g}).",
        ),
    ] = 0,
) -> RunDocument:
    """As `runs show`; with `wait`, as `runs wait` bounded by `wait` seconds: the answer is
    200 either way, and the status says whether the run has ended. When MAX_WAITS long-polls
    are open already, the answer comes at once."""
    run = await whole_run(store, run_id)
    waits = _waits(request)
    if wait > 0 and run.status not in ENDED_STATUSES and not waits.locked():
        async with waits:
            try:
                run = await store.wait(run.run_id, timeout=wait)
            except TimeoutError:
                run = await store.get(run.run_id)
    return run_document(run)


def _waits(request: Request) -> asyncio.Semaphore:
    """The app's bound on long-polls held open at once (MAX_WAITS), made on first use."""
    waits: asyncio.Semaphore | None = getattr(request.app.state, "run_waits", None)
    if waits is None:
        waits = asyncio.Semaphore(MAX_WAITS)
        request.app.state.run_waits = waits
    return waits


@router.post(
    "/{run_id}/cancel",
    response_model=RunDocument,
    responses=problem_responses(404, 409),
    summary="Cancel a run",
)
async def cancel_run(
    request: Request, store: RunStore, run_id: RunId
) -> RunDocument | JSONResponse:
    """A queued run is cancelled at once and never starts; a running one is marked
    (`cancel_requested_at`) and stops at its next call boundary (its status says `running`
    until then). An ended run is a 409 saying how it ended."""
    run = await whole_run(store, run_id)
    try:
        cancelled = await store.cancel(run.run_id)
    except RunEndedError as ended:
        return problem_response(request, 409, kind="run-ended", detail=str(ended))
    return run_document(cancelled)

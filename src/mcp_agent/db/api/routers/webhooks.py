"""/v1/webhooks: where to POST when runs end, and what was delivered, as `fast-agent-db webhooks
list|add|remove|deliveries`, through the same webhook store (webhooks/sql.py).

A webhook here is a subscription: every run's end, or one agent's runs' (a run's own webhook
is given with the run: `webhook_url` of `POST /v1/runs`). The workers deliver each end as a
signed POST (`X-Fast-Agent-Signature: sha256=<hex>` of the body, HMAC with the secret the
webhook's `secret_ref` names, which the workers read from their environment), retried with
backoff; `GET /v1/webhooks/deliveries` shows each delivery with every attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    Page,
    PageParameters,
    encode_cursor,
    paginate,
    timed_cursor,
)
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.api.routers.queued_runs import RUN_ID_LENGTH, whole_run
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.limits import AGENT_NAME_MAX_LENGTH
from mcp_agent.db.models.runs import WebhookRow
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.webhooks.base import DeliveryAttempt, DeliveryStatus, Webhook, WebhookDelivery
from mcp_agent.db.webhooks.pages import deliveries_page
from mcp_agent.db.webhooks.sql import SqlWebhookStore
from mcp_agent.db.webhooks.validation import WEBHOOK_EVENTS

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_ID_LENGTH = 36
_URL_MAX_LENGTH = WebhookRow.__table__.c.url.type.length
_SECRET_REF_MAX_LENGTH = WebhookRow.__table__.c.secret_ref.type.length
#: The names the webhook store's checks give fields, as this API's body names them.
_BODY_FIELDS = {"agent_name": "agent"}

WebhookId = Annotated[
    str, Path(min_length=1, max_length=_ID_LENGTH, description="The webhook's id (a UUID).")
]
DeliveryId = Annotated[
    str, Path(min_length=1, max_length=_ID_LENGTH, description="The delivery's id (a UUID).")
]


async def webhook_store(runtime: Runtime) -> SqlWebhookStore:
    return SqlWebhookStore(runtime)


WebhookStore = Annotated[SqlWebhookStore, Depends(webhook_store)]


class NewWebhook(BaseModel):
    """A subscription to runs' ends."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=_URL_MAX_LENGTH,
        description="Where to POST: an http(s) URL without credentials.",
    )
    events: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=len(WEBHOOK_EVENTS),
        description=f"Which ends: {', '.join(WEBHOOK_EVENTS)} (default: all).",
    )
    agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="Only this agent's runs (default: every run).",
    )
    secret_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=_SECRET_REF_MAX_LENGTH,
        description="Where the workers read the signing secret: `env:NAME` (default "
        "env:FAST_AGENT_DB_WEBHOOK_SECRET). Never the secret itself.",
    )


class WebhookDocument(BaseModel):
    webhook_id: str
    url: str
    #: Where the signing secret is read from (`env:NAME`); the secret is never stored.
    secret_ref: str
    events: list[str]
    #: A subscription to one agent's runs; null: every agent's.
    agent_name: str | None = None
    #: A run's own webhook (given with the run); null for a subscription.
    run_id: str | None = None
    created_at: datetime
    disabled_at: datetime | None = None


class AttemptDocument(BaseModel):
    """One try at a delivery: the receiver's status code, or why there was none."""

    attempt: int
    attempted_at: datetime
    worker_id: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


class DeliveryDocument(BaseModel):
    """One POST for a run's end, with every attempt at it, oldest first."""

    delivery_id: str
    #: Null once its webhook was removed (the delivery still goes).
    webhook_id: str | None = None
    run_id: str
    event: str
    url: str
    #: pending (to be tried, or tried again), delivered, failed (attempts exhausted).
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    #: The JSON body POSTed.
    payload: dict[str, Any]
    attempt_log: list[AttemptDocument] = Field(default_factory=list)


def webhook_document(webhook: Webhook) -> WebhookDocument:
    return WebhookDocument(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        secret_ref=webhook.secret_ref,
        events=list(webhook.events),
        agent_name=webhook.agent_name,
        run_id=webhook.run_id,
        created_at=webhook.created_at,
        disabled_at=webhook.disabled_at,
    )


def _attempt_document(attempt: DeliveryAttempt) -> AttemptDocument:
    return AttemptDocument(
        attempt=attempt.attempt,
        attempted_at=attempt.attempted_at,
        worker_id=attempt.worker_id,
        status_code=attempt.status_code,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )


def delivery_document(delivery: WebhookDelivery) -> DeliveryDocument:
    return DeliveryDocument(
        delivery_id=delivery.delivery_id,
        webhook_id=delivery.webhook_id,
        run_id=delivery.run_id,
        event=delivery.event,
        url=delivery.url,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        payload=delivery.payload,
        attempt_log=[_attempt_document(attempt) for attempt in delivery.attempt_log],
    )


async def _require_run(runtime: DatabaseRuntime, run_id: str) -> None:
    """A `run` filter naming no run is a typo, said as such (as the other lists' filters).

    Raises:
        InputError: naming `run`.
    """
    try:
        await whole_run(SqlRunStore(runtime), run_id)
    except UnknownValueError as error:
        raise InputError("run", str(error)) from None


def _webhook_key(webhook: WebhookDocument) -> tuple[str, str]:
    return webhook.created_at.isoformat(), webhook.webhook_id


@router.get("", response_model=Page[WebhookDocument], summary="List webhooks, oldest first")
async def list_webhooks(
    runtime: Runtime,
    store: WebhookStore,
    page: PageParameters,
    run: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=RUN_ID_LENGTH,
            description="Only this run's own webhooks (given with it).",
        ),
    ] = None,
    include_runs: Annotated[
        bool, Query(description="Runs' own webhooks too, not only subscriptions.")
    ] = False,
) -> Page[WebhookDocument]:
    """Subscriptions (as `webhooks list`); with `include_runs` runs' own webhooks too, with
    `run` only that run's."""
    webhooks = await store.list(run_id=run, include_runs=include_runs)
    if run is not None and not webhooks:
        await _require_run(runtime, run)
    return paginate(
        [webhook_document(webhook) for webhook in webhooks],
        page,
        list_name="webhooks",
        key=_webhook_key,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookDocument,
    responses={
        201: {
            "description": "Stored: the webhook, with its URL in Location.",
            "headers": {
                "Location": {"description": "The webhook's URL.", "schema": {"type": "string"}}
            },
        }
    },
    summary="Subscribe to runs' ends",
)
async def add_webhook(
    request: Request, response: Response, store: WebhookStore, body: NewWebhook
) -> WebhookDocument:
    """As `webhooks add`: a bad URL (not http(s), carrying credentials), an unknown event or a
    secret given instead of its `env:NAME` reference is a 422 naming the field (the secret is
    never repeated), and nothing is stored."""
    try:
        webhook = await store.add(
            body.url, events=body.events, agent_name=body.agent, secret_ref=body.secret_ref
        )
    except InputError as error:
        raise InputError(_BODY_FIELDS.get(error.field, error.field), error.reason) from None
    response.headers["Location"] = f"{request.url.path}/{webhook.webhook_id}"
    return webhook_document(webhook)


@router.get(
    "/deliveries",
    response_model=Page[DeliveryDocument],
    summary="Deliveries of runs' ends, newest first, with their attempts",
)
async def list_deliveries(
    runtime: Runtime,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"At most {MAX_PAGE_SIZE}.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    run: Annotated[
        str | None,
        Query(min_length=1, max_length=RUN_ID_LENGTH, description="Only this run's."),
    ] = None,
    webhook: Annotated[
        str | None,
        Query(min_length=1, max_length=_ID_LENGTH, description="Only this webhook's."),
    ] = None,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only deliveries in this state.")
    ] = None,
) -> Page[DeliveryDocument]:
    """As `webhooks deliveries`. A run or webhook filter naming nothing is a 422 saying so."""
    before = None if cursor is None else timed_cursor(cursor, "webhook-deliveries")
    found = await deliveries_page(
        runtime,
        limit=limit + 1,
        before=before,
        run_id=run,
        webhook_id=webhook,
        status=delivery_status,
    )
    if not found and before is None:
        if run is not None:
            await _require_run(runtime, run)
        if webhook is not None:
            try:
                await SqlWebhookStore(runtime).get(webhook)
            except UnknownValueError as error:
                raise InputError("webhook", str(error)) from None
    items = [delivery_document(delivery) for delivery in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = encode_cursor(
            "webhook-deliveries", (last.created_at.isoformat(), last.delivery_id)
        )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryDocument,
    responses=problem_responses(404),
    summary="A delivery with every attempt at it",
)
async def get_delivery(store: WebhookStore, delivery_id: DeliveryId) -> DeliveryDocument:
    return delivery_document(await store.delivery(delivery_id))


@router.get(
    "/{webhook_id}",
    response_model=WebhookDocument,
    responses=problem_responses(404),
    summary="A webhook",
)
async def get_webhook(store: WebhookStore, webhook_id: WebhookId) -> WebhookDocument:
    return webhook_document(await store.get(webhook_id))


@router.delete(
    "/{webhook_id}",
    response_model=WebhookDocument,
    responses=problem_responses(404),
    summary="Remove a webhook",
)
async def remove_webhook(store: WebhookStore, webhook_id: WebhookId) -> WebhookDocument:
    """As `webhooks remove`: no new deliveries; those already made still go and stay listed
    (without the webhook's id). The answer is the webhook as it was."""
    return webhook_document(await store.remove(webhook_id))

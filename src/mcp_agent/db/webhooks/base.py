"""The webhook store seam: webhooks (subscriptions and per-run ones) and their deliveries,
each with every attempt made at it. ORM rows never leave a store: these do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from mcp_agent.db.runs.base import Run

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where to POST when a run ends (fa_webhooks).

    A subscription has no `run_id`: every run's end (`agent_name` None) or one agent's. A
    per-run webhook was given when its run was submitted. `secret_ref` names where the signing
    secret is read from (`env:NAME`); the secret itself is never stored.
    """

    webhook_id: str
    url: str
    secret_ref: str
    events: tuple[str, ...]
    agent_name: str | None
    run_id: str | None
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try at a delivery (fa_webhook_attempts): what the receiver answered, or why no
    answer came (a network error, a missing secret)."""

    attempt: int
    attempted_at: datetime
    worker_id: str
    status_code: int | None
    error: str | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One POST to make for a run's end (the outbox row), with its attempts, oldest first."""

    delivery_id: str
    webhook_id: str | None
    run_id: str
    event: str
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    payload: dict[str, Any]
    attempt_log: tuple[DeliveryAttempt, ...] = ()


class WebhookStore(Protocol):
    async def add(
        self,
        url: str,
        *,
        events: list[str] | None = None,
        agent_name: str | None = None,
        run_id: str | None = None,
        secret_ref: str | None = None,
    ) -> Webhook:
        """Store a webhook: a subscription (no `run_id`), or one run's.

        `events` None: every end (`run.completed`, `run.failed`, `run.cancelled`). `secret_ref`
        None: `env:FAST_AGENT_DB_WEBHOOK_SECRET`. Nothing is stored when anything is refused.

        Raises:
            InputError: a URL that is not http(s) or carries credentials, a secret that is not
                an `env:NAME` reference (a literal secret: the message says to put it in an
                environment variable, without repeating it), an unknown event, both an agent
                and a run.
            UnknownValueError: `run_id` names no run.
        """
        ...

    async def list(self, *, run_id: str | None = None, include_runs: bool = False) -> list[Webhook]:
        """Subscriptions, oldest first; with `include_runs` per-run webhooks too; with
        `run_id` only that run's webhooks."""
        ...

    async def get(self, webhook_id: str) -> Webhook:
        """Raises:
        UnknownValueError: no webhook has this id."""
        ...

    async def remove(self, webhook_id: str) -> Webhook:
        """Delete the webhook: no new deliveries; those already made still go (they carry
        their own URL and secret reference) and stay listed.

        Raises:
            UnknownValueError: no webhook has this id.
        """
        ...

    async def enqueue_run_end(self, run: Run) -> int:
        """Write the deliveries of an ended run (see outbox.enqueue_run_end, which a run store
        calls inside the transaction that ends the run); how many."""
        ...

    async def deliveries(
        self,
        *,
        run_id: str | None = None,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[WebhookDelivery]:
        """Deliveries with their attempts, newest first, at most `limit`."""
        ...

    async def delivery(self, delivery_id: str) -> WebhookDelivery:
        """Raises:
        UnknownValueError: no delivery has this id."""
        ...

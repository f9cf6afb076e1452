"""Webhooks and their deliveries in fa_webhooks, fa_webhook_deliveries, fa_webhook_attempts."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_agent.db.errors import UnknownValueError
from mcp_agent.db.models.runs import (
    RunRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from mcp_agent.db.runs.base import Run
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.webhooks import outbox
from mcp_agent.db.webhooks.base import (
    DeliveryAttempt,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
)
from mcp_agent.db.webhooks.validation import checked_limit, checked_status, new_webhook


def webhook_from_row(row: WebhookRow) -> Webhook:
    return Webhook(
        webhook_id=row.webhook_id,
        url=row.url,
        secret_ref=row.secret_ref,
        events=tuple(row.events),
        agent_name=row.agent_name,
        run_id=row.run_id,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def attempt_from_row(row: WebhookAttemptRow) -> DeliveryAttempt:
    return DeliveryAttempt(
        attempt=row.attempt,
        attempted_at=row.attempted_at,
        worker_id=row.worker_id,
        status_code=row.status_code,
        error=row.error,
        duration_ms=row.duration_ms,
    )


def delivery_from_row(
    row: WebhookDeliveryRow, attempts: tuple[DeliveryAttempt, ...] = ()
) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=row.delivery_id,
        webhook_id=row.webhook_id,
        run_id=row.run_id,
        event=row.event,
        url=row.url,
        status=row.status,  # type: ignore[arg-type] - the column's check constraint
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        payload=row.payload,
        attempt_log=attempts,
    )


class SqlWebhookStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def add(
        self,
        url: str,
        *,
        events: list[str] | None = None,
        agent_name: str | None = None,
        run_id: str | None = None,
        secret_ref: str | None = None,
    ) -> Webhook:
        webhook = new_webhook(
            url, events=events, agent_name=agent_name, run_id=run_id, secret_ref=secret_ref
        )
        async with self._runtime.sessions.begin() as session:
            if run_id is not None and await session.get(RunRow, run_id) is None:
                raise UnknownValueError(f"no run {run_id!r}")
            session.add(
                WebhookRow(
                    webhook_id=webhook.webhook_id,
                    url=webhook.url,
                    secret_ref=webhook.secret_ref,
                    events=list(webhook.events),
                    agent_name=webhook.agent_name,
                    run_id=webhook.run_id,
                    created_at=webhook.created_at,
                )
            )
        return webhook

    async def list(self, *, run_id: str | None = None, include_runs: bool = False) -> list[Webhook]:
        query = select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.webhook_id)
        if run_id is not None:
            query = query.where(WebhookRow.run_id == run_id)
        elif not include_runs:
            query = query.where(WebhookRow.run_id.is_(None))
        async with self._runtime.sessions() as session:
            return [webhook_from_row(row) for row in await session.scalars(query)]

    async def get(self, webhook_id: str) -> Webhook:
        async with self._runtime.sessions() as session:
            row = await session.get(WebhookRow, webhook_id)
        if row is None:
            raise UnknownValueError(f"no webhook {webhook_id!r}")
        return webhook_from_row(row)

    async def remove(self, webhook_id: str) -> Webhook:
        async with self._runtime.sessions.begin() as session:
            row = await session.get(WebhookRow, webhook_id)
            if row is None:
                raise UnknownValueError(f"no webhook {webhook_id!r}")
            removed = webhook_from_row(row)
            await session.execute(delete(WebhookRow).where(WebhookRow.webhook_id == webhook_id))
        return removed

    async def enqueue_run_end(self, run: Run) -> int:
        async with self._runtime.engine.begin() as connection:
            return await outbox.enqueue_run_end(connection, run)

    async def deliveries(
        self,
        *,
        run_id: str | None = None,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[WebhookDelivery]:
        status = checked_status(status)
        query = select(WebhookDeliveryRow).order_by(
            WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.delivery_id.desc()
        )
        if run_id is not None:
            query = query.where(WebhookDeliveryRow.run_id == run_id)
        if webhook_id is not None:
            query = query.where(WebhookDeliveryRow.webhook_id == webhook_id)
        if status is not None:
            query = query.where(WebhookDeliveryRow.status == status)
        async with self._runtime.sessions() as session:
            rows = list(await session.scalars(query.limit(checked_limit(limit))))
            attempts = await _attempts_of(session, [row.delivery_id for row in rows])
        return [delivery_from_row(row, attempts.get(row.delivery_id, ())) for row in rows]

    async def delivery(self, delivery_id: str) -> WebhookDelivery:
        async with self._runtime.sessions() as session:
            row = await session.get(WebhookDeliveryRow, delivery_id)
            if row is None:
                raise UnknownValueError(f"no webhook delivery {delivery_id!r}")
            attempts = await _attempts_of(session, [delivery_id])
        return delivery_from_row(row, attempts.get(delivery_id, ()))


async def _attempts_of(
    session: AsyncSession, delivery_ids: list[str]
) -> dict[str, tuple[DeliveryAttempt, ...]]:
    """Each delivery's attempts, oldest first."""
    found: dict[str, list[DeliveryAttempt]] = {}
    if not delivery_ids:
        return {}
    rows = await session.scalars(
        select(WebhookAttemptRow)
        .where(WebhookAttemptRow.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttemptRow.delivery_id, WebhookAttemptRow.attempt_id)
    )
    for row in rows:
        found.setdefault(row.delivery_id, []).append(attempt_from_row(row))
    return {delivery_id: tuple(attempts) for delivery_id, attempts in found.items()}

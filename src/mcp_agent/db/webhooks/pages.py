"""Webhook deliveries a page at a time, newest first, for `GET /v1/webhooks/deliveries`: keyset
pages on (created_at, delivery_id), each delivery with its attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from mcp_agent.db.models.runs import WebhookDeliveryRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.webhooks.base import DeliveryStatus, WebhookDelivery
from mcp_agent.db.webhooks.sql import _attempts_of, delivery_from_row
from mcp_agent.db.webhooks.validation import checked_limit, checked_status


async def deliveries_page(
    runtime: DatabaseRuntime,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
    run_id: str | None = None,
    webhook_id: str | None = None,
    status: DeliveryStatus | None = None,
) -> list[WebhookDelivery]:
    """At most `limit` deliveries matching every filter given, newest first, from after
    `before` (the (created_at, delivery_id) of the previous page's last delivery)."""
    status = checked_status(status)
    deliveries = WebhookDeliveryRow
    query = select(deliveries).order_by(deliveries.created_at.desc(), deliveries.delivery_id.desc())
    if before is not None:
        at, delivery_id = before
        query = query.where(
            or_(
                deliveries.created_at < at,
                (deliveries.created_at == at) & (deliveries.delivery_id < delivery_id),
            )
        )
    if run_id is not None:
        query = query.where(deliveries.run_id == run_id)
    if webhook_id is not None:
        query = query.where(deliveries.webhook_id == webhook_id)
    if status is not None:
        query = query.where(deliveries.status == status)
    async with runtime.sessions() as session:
        rows = list(await session.scalars(query.limit(checked_limit(limit))))
        attempts = await _attempts_of(session, [row.delivery_id for row in rows])
    return [delivery_from_row(row, attempts.get(row.delivery_id, ())) for row in rows]

"""The outbox: a run's end writes one delivery per matching webhook in the transaction that
ends it, so a run never ends without its webhooks being told, nor tells them of an end that
was rolled back.

The run store calls `enqueue_run_end` on the connection of that transaction, and
`insert_run_webhook` for a webhook given at submit. Both are SQLAlchemy Core, for SQLite and
PostgreSQL alike; neither commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.models.runs import WebhookDeliveryRow, WebhookRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import ENDED_STATUSES, Run
from mcp_agent.db.webhooks.validation import checked_events, checked_secret_ref, checked_url

#: PostgreSQL channel NOTIFYed (on commit) when deliveries are due: deliverers LISTEN on it.
DELIVERIES_CHANNEL = "fa_webhook_deliveries"
NOTIFY_DELIVERIES_SQL = f"SELECT pg_notify('{DELIVERIES_CHANNEL}', '')"

_webhooks = WebhookRow.__table__
_deliveries = WebhookDeliveryRow.__table__


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def run_payload(run: Run, *, event: str, delivery_id: str, webhook_id: str) -> dict[str, Any]:
    """The JSON document POSTed for a run's end (the same for every webhook but its ids)."""
    return {
        "event": event,
        "delivery_id": delivery_id,
        "webhook_id": webhook_id,
        "run": {
            "run_id": run.run_id,
            "agent_name": run.agent_name,
            "session_id": run.session_id,
            "status": run.status,
            "result": run.result,
            "error": run.error,
            "attempts": run.attempts,
            "max_attempts": run.max_attempts,
            "idempotency_key": run.idempotency_key,
            "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
        },
    }


async def enqueue_run_end(connection: AsyncConnection, run: Run) -> int:
    """Write the deliveries of `run`'s end, in the caller's transaction; how many.

    One per enabled webhook that wants `run.<status>`: the run's own (given at submit) and
    every subscription to all runs or to the run's agent. The URL and secret reference are
    copied onto the delivery. On PostgreSQL deliverers are NOTIFYed, which PostgreSQL sends
    only when (if) the transaction commits.

    Raises:
        ValueError: the run has not ended.
    """
    if run.status not in ENDED_STATUSES:
        raise ValueError(f"run {run.run_id} has not ended (status {run.status})")
    event = f"run.{run.status}"
    matching = await connection.execute(
        select(_webhooks.c.webhook_id, _webhooks.c.url, _webhooks.c.secret_ref, _webhooks.c.events)
        .where(
            _webhooks.c.disabled_at.is_(None),
            or_(
                _webhooks.c.run_id == run.run_id,
                and_(
                    _webhooks.c.run_id.is_(None),
                    or_(
                        _webhooks.c.agent_name.is_(None),
                        _webhooks.c.agent_name == run.agent_name,
                    ),
                ),
            ),
        )
        .order_by(_webhooks.c.created_at, _webhooks.c.webhook_id)
    )
    now = utc_now()
    rows: list[dict[str, Any]] = []
    # Events are a short JSON list: filtered here, the same on both backends.
    for webhook in matching:
        if event not in (webhook.events or ()):
            continue
        delivery_id = str(uuid.uuid4())
        rows.append(
            {
                "delivery_id": delivery_id,
                "webhook_id": webhook.webhook_id,
                "run_id": run.run_id,
                "event": event,
                "url": webhook.url,
                "secret_ref": webhook.secret_ref,
                "payload": run_payload(
                    run, event=event, delivery_id=delivery_id, webhook_id=webhook.webhook_id
                ),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    if not rows:
        return 0
    await connection.execute(insert(_deliveries), rows)
    if connection.dialect.name == "postgresql":
        await connection.execute(text(NOTIFY_DELIVERIES_SQL))
    return len(rows)


async def insert_run_webhook(
    connection: AsyncConnection,
    *,
    run_id: str,
    url: str,
    secret_ref: str | None = None,
    events: list[str] | None = None,
) -> str:
    """Store the webhook a run was submitted with, in the caller's (submit) transaction; its id.

    `secret_ref` None: `env:FAST_AGENT_DB_WEBHOOK_SECRET`. `events` None: every end.

    Raises:
        InputError: a bad URL, a secret that is not a reference, an unknown event.
    """
    webhook_id = str(uuid.uuid4())
    await connection.execute(
        insert(_webhooks).values(
            webhook_id=webhook_id,
            url=checked_url(url),
            secret_ref=checked_secret_ref(secret_ref),
            events=checked_events(events),
            agent_name=None,
            run_id=run_id,
            created_at=utc_now(),
        )
    )
    return webhook_id

"""In-memory webhook store: the reference implementation and the test double.

It keeps no runs: a per-run webhook may name any run id. It delivers nothing (the deliverer
works on the database); its deliveries stay pending.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from mcp_agent.db.errors import UnknownValueError
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import ENDED_STATUSES, Run
from mcp_agent.db.webhooks.base import DeliveryStatus, Webhook, WebhookDelivery
from mcp_agent.db.webhooks.outbox import run_payload
from mcp_agent.db.webhooks.validation import checked_limit, checked_status, new_webhook


class InMemoryWebhookStore:
    def __init__(self) -> None:
        self._webhooks: dict[str, Webhook] = {}
        self._deliveries: dict[str, WebhookDelivery] = {}

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
        self._webhooks[webhook.webhook_id] = webhook
        return webhook

    async def list(self, *, run_id: str | None = None, include_runs: bool = False) -> list[Webhook]:
        webhooks = sorted(
            self._webhooks.values(), key=lambda webhook: (webhook.created_at, webhook.webhook_id)
        )
        if run_id is not None:
            return [webhook for webhook in webhooks if webhook.run_id == run_id]
        return [webhook for webhook in webhooks if include_runs or webhook.run_id is None]

    async def get(self, webhook_id: str) -> Webhook:
        try:
            return self._webhooks[webhook_id]
        except KeyError:
            raise UnknownValueError(f"no webhook {webhook_id!r}") from None

    async def remove(self, webhook_id: str) -> Webhook:
        removed = await self.get(webhook_id)
        del self._webhooks[webhook_id]
        for delivery in list(self._deliveries.values()):
            if delivery.webhook_id == webhook_id:
                self._deliveries[delivery.delivery_id] = replace(delivery, webhook_id=None)
        return removed

    async def enqueue_run_end(self, run: Run) -> int:
        if run.status not in ENDED_STATUSES:
            raise ValueError(f"run {run.run_id} has not ended (status {run.status})")
        event = f"run.{run.status}"
        now = utc_now()
        count = 0
        for webhook in await self.list(include_runs=True):
            if webhook.disabled_at is not None or event not in webhook.events:
                continue
            if webhook.run_id is None:
                if webhook.agent_name not in (None, run.agent_name):
                    continue
            elif webhook.run_id != run.run_id:
                continue
            delivery_id = str(uuid.uuid4())
            self._deliveries[delivery_id] = WebhookDelivery(
                delivery_id=delivery_id,
                webhook_id=webhook.webhook_id,
                run_id=run.run_id,
                event=event,
                url=webhook.url,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                delivered_at=None,
                last_status_code=None,
                last_error=None,
                payload=run_payload(
                    run, event=event, delivery_id=delivery_id, webhook_id=webhook.webhook_id
                ),
            )
            count += 1
        return count

    async def deliveries(
        self,
        *,
        run_id: str | None = None,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[WebhookDelivery]:
        status = checked_status(status)
        limit = checked_limit(limit)
        chosen = [
            delivery
            for delivery in self._deliveries.values()
            if (run_id is None or delivery.run_id == run_id)
            and (webhook_id is None or delivery.webhook_id == webhook_id)
            and (status is None or delivery.status == status)
        ]
        chosen.sort(key=lambda delivery: (delivery.created_at, delivery.delivery_id), reverse=True)
        return chosen[:limit]

    async def delivery(self, delivery_id: str) -> WebhookDelivery:
        try:
            return self._deliveries[delivery_id]
        except KeyError:
            raise UnknownValueError(f"no webhook delivery {delivery_id!r}") from None

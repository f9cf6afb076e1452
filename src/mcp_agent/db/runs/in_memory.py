"""In-memory run queue: the reference implementation and test double of `RunStore`.

One event loop's worth of state, no locks needed: every method runs to its end without
awaiting anything that could let another claim in between its read and its write (the
definition and session checks are done before, and change nothing on error).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mcp_agent.db.errors import RunEndedError, UnknownValueError
from mcp_agent.db.lookups import MIN_PREFIX_LENGTH
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import (
    ENDED_STATUSES,
    ClaimedRun,
    Lease,
    Run,
    RunOutcome,
    RunStatus,
    RunSubmission,
)
from mcp_agent.db.runs.journal import Fence, lease_lost
from mcp_agent.db.runs.sql import RUN_SESSION_APP, check_limit, instead_of_claim, next_state
from mcp_agent.db.runs.submission import (
    checked_submission,
    configured_retry_backoff_s,
    duplicate_run,
    ended_error,
    unknown_agent,
)

if TYPE_CHECKING:
    from mcp_agent.db.conversations.base import ConversationStore
    from mcp_agent.db.definitions.base import DefinitionStore
    from mcp_agent.db.runs.journal import InMemoryRunJournal
    from mcp_agent.db.webhooks.in_memory import InMemoryWebhookStore


class InMemoryRunStore:
    """Runs in a dict. `definitions` says which agents exist, `conversations` gets the
    sessions made for runs; given, `webhooks` gets runs' webhooks and their ends' deliveries,
    and `journal` the runs' leases (so an `InMemoryTurnStore` sharing it is fenced by them)."""

    def __init__(
        self,
        *,
        definitions: DefinitionStore,
        conversations: ConversationStore,
        webhooks: InMemoryWebhookStore | None = None,
        journal: InMemoryRunJournal | None = None,
        retry_backoff_s: float | None = None,
    ) -> None:
        self._definitions = definitions
        self._conversations = conversations
        self._webhooks = webhooks
        self._journal = journal
        self._backoff_s = (
            configured_retry_backoff_s() if retry_backoff_s is None else retry_backoff_s
        )
        self._runs: dict[str, Run] = {}
        self._changed = asyncio.Condition()

    async def submit(self, submission: RunSubmission) -> Run:
        submission = checked_submission(submission)
        name = submission.agent_name
        if name not in await self._definitions.current([name]):
            raise unknown_agent(name, list(await self._definitions.current()))
        if submission.idempotency_key is not None:
            for existing in self._runs.values():
                if (existing.caller, existing.idempotency_key) == (
                    submission.caller,
                    submission.idempotency_key,
                ):
                    raise duplicate_run(existing)
        now = utc_now()
        run = Run(
            run_id=str(uuid.uuid4()),
            agent_name=name,
            session_id=submission.session_id or str(uuid.uuid4()),
            message=submission.message,
            model=submission.model,
            status="queued",
            attempts=0,
            max_attempts=submission.max_attempts,
            caller=submission.caller,
            idempotency_key=submission.idempotency_key,
            not_before=now,
            deadline=submission.deadline,
            lease_owner=None,
            lease_epoch=0,
            lease_expires_at=None,
            cancel_requested_at=None,
            created_at=now,
            started_at=None,
            finished_at=None,
            result=None,
            error=None,
        )
        assert run.session_id is not None
        await self._conversations.ensure_session(run.session_id, app_name=RUN_SESSION_APP)
        if submission.webhook_url is not None and self._webhooks is not None:
            # Validated with the submission: adding it cannot fail.
            await self._webhooks.add(
                submission.webhook_url,
                run_id=run.run_id,
                secret_ref=submission.webhook_secret_ref,
            )
        self._runs[run.run_id] = run
        return run

    def _find(self, run_id: str) -> Run:
        if run_id in self._runs:
            return self._runs[run_id]
        if len(run_id) < MIN_PREFIX_LENGTH:
            raise UnknownValueError(
                f"no run {run_id!r} (a prefix needs at least {MIN_PREFIX_LENGTH} characters)"
            )
        found = sorted(key for key in self._runs if key.startswith(run_id))
        if not found:
            raise UnknownValueError(f"no run {run_id!r}")
        if len(found) > 1:
            raise UnknownValueError(
                f"run prefix {run_id!r} is ambiguous: it begins {', '.join(found)}; type more"
            )
        return self._runs[found[0]]

    async def get(self, run_id: str) -> Run:
        return self._find(run_id)

    async def list(
        self,
        *,
        status: RunStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        check_limit(limit)
        runs = [
            run
            for run in self._runs.values()
            if (status is None or run.status == status)
            and (agent_name is None or run.agent_name == agent_name)
            and (session_id is None or run.session_id == session_id)
        ]
        runs.sort(key=lambda run: (run.created_at, run.run_id), reverse=True)
        return runs[:limit]

    async def _set(self, run: Run, values: dict[str, Any]) -> Run:
        changed = replace(run, **values)
        self._runs[run.run_id] = changed
        if self._journal is not None:
            self._journal.hold(run.run_id, changed.lease_epoch, changed.status)
        if changed.status in ENDED_STATUSES and self._webhooks is not None:
            await self._webhooks.enqueue_run_end(changed)
        async with self._changed:
            self._changed.notify_all()
        return changed

    async def cancel(self, run_id: str) -> Run:
        run = self._find(run_id)
        if run.status in ENDED_STATUSES:
            raise RunEndedError(ended_error(run))
        now = utc_now()
        if run.status == "queued":
            return await self._set(
                run,
                {
                    "status": "cancelled",
                    "error": "cancelled before it started",
                    "cancel_requested_at": now,
                    "finished_at": now,
                },
            )
        if run.cancel_requested_at is not None:
            return run
        return await self._set(run, {"cancel_requested_at": now})

    async def claim(self, worker_id: str, *, lease_seconds: float) -> ClaimedRun | None:
        while True:
            now = utc_now()
            claimable = [
                run
                for run in self._runs.values()
                if (run.status == "queued" and run.not_before <= now)
                or (
                    run.status == "running"
                    and run.lease_expires_at is not None
                    and run.lease_expires_at < now
                )
            ]
            if not claimable:
                return None
            run = min(claimable, key=lambda run: (run.not_before, run.created_at))
            ended = instead_of_claim(run, now)
            if ended is not None:
                await self._set(run, ended)
                continue
            expires_at = now + timedelta(seconds=lease_seconds)
            claimed = await self._set(
                run,
                {
                    "status": "running",
                    "lease_owner": worker_id,
                    "lease_epoch": run.lease_epoch + 1,
                    "lease_expires_at": expires_at,
                    "attempts": run.attempts + 1,
                    "started_at": run.started_at or now,
                },
            )
            lease = Lease(run.run_id, worker_id, claimed.lease_epoch, expires_at)
            return ClaimedRun(claimed, lease)

    def _held(self, lease: Lease) -> Run:
        run = self._runs.get(lease.run_id)
        if run is None or (run.status, run.lease_epoch) != ("running", lease.epoch):
            fence = Fence(lease.run_id, lease.epoch)
            raise lease_lost(fence, *((run.status, run.lease_epoch) if run else (None, None)))
        return run

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        run = self._held(lease)
        expires_at = utc_now() + timedelta(seconds=lease_seconds)
        self._runs[run.run_id] = replace(run, lease_expires_at=expires_at)
        return run.cancel_requested_at is not None

    async def finish(self, lease: Lease, outcome: RunOutcome) -> Run:
        run = self._held(lease)
        return await self._set(run, next_state(run, outcome, utc_now(), self._backoff_s))

    async def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        run_id = self._find(run_id).run_id

        async def ended() -> Run:
            async with self._changed:
                await self._changed.wait_for(lambda: self._runs[run_id].status in ENDED_STATUSES)
            return self._runs[run_id]

        return await asyncio.wait_for(ended(), timeout)

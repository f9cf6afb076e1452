"""The deliverer: POSTs the outbox's due deliveries, signed, and retries them with backoff.

A pass claims up to `batch_size` due deliveries in one statement (PostgreSQL: `FOR UPDATE SKIP
LOCKED` in the subquery, so concurrent deliverers take disjoint rows; SQLite: a single write
statement, which holds the database's one write lock from its read to its write), each with
a short lease (`lease_owner`, `lease_expires_at`) so no other deliverer POSTs it meanwhile.
No transaction is open during a POST. Each POST's outcome is then recorded in one
transaction: the attempt row, and the delivery's new state, written only while this
deliverer still holds its lease.

Outcomes: a 2xx answer is delivered; anything else (another status, a network error, a
timeout, the signing secret's variable not set) is an attempt that failed, retried after an
exponential backoff with jitter (1 s, 2 s, 4 s ... at most 1 h), and `failed` after
`max_attempts`. Nothing is ever deleted, and nothing is ever sent unsigned. A deliverer that
dies holding leases leaves them to expire; another deliverer then POSTs those deliveries
again, and the receiver drops a repeat by its X-Fast-Agent-Delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, or_, select, update

from mcp_agent.db.clock import database_now, database_now_plus, now_column
from mcp_agent.db.engine import POSTGRES_CONNECT_TIMEOUT_S
from mcp_agent.db.errors import InputError
from mcp_agent.db.events.failures import describe_failure
from mcp_agent.db.models.runs import WebhookAttemptRow, WebhookDeliveryRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.secrets import SecretError, resolve
from mcp_agent.db.webhooks.outbox import DELIVERIES_CHANNEL
from mcp_agent.db.webhooks.signing import signed_headers

MAX_ATTEMPTS_ENV = "FAST_AGENT_DB_WEBHOOK_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 20
TIMEOUT_ENV = "FAST_AGENT_DB_WEBHOOK_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0
#: The first retry's delay; each later one doubles, up to RETRY_CAP_S.
RETRY_BASE_S = 1.0
RETRY_CAP_S = 3600.0
#: Deliveries claimed per pass, and POSTed at once within it.
DEFAULT_BATCH_SIZE = 32
CONCURRENT_POSTS = 8
#: How long a claim holds its deliveries beyond the pass's POSTs (their timeouts, in rounds of
#: CONCURRENT_POSTS): the records fit in it.
LEASE_MARGIN_S = 30.0
#: SQLite (no notifications): how often an idle deliverer looks for due deliveries.
SQLITE_POLL_INTERVAL_S = 1.0
#: PostgreSQL: a submit's NOTIFY wakes it; it still looks this often (a dead deliverer's
#: expired leases, a lost notification).
POSTGRES_POLL_INTERVAL_S = 15.0
#: How much of an error a recorded attempt keeps.
_ERROR_MAX = 500

_deliveries = WebhookDeliveryRow.__table__
_attempts = WebhookAttemptRow.__table__


def _positive_number_env(name: str, default: float, *, whole: bool) -> float:
    """Raises:
    InputError: the variable is set and not a positive number."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = 0
    if value <= 0:
        kind = "whole number" if whole else "number of seconds"
        raise InputError(name, f"{raw!r} is not a positive {kind}")
    return value


def configured_max_attempts() -> int:
    return int(_positive_number_env(MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS, whole=True))


def configured_timeout_s() -> float:
    return _positive_number_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, whole=False)


def retry_delay_s(
    attempts: int, *, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S
) -> float:
    """The wait after the `attempts`-th failed attempt: base·2^(attempts-1), capped, then
    between half of it and all of it at random, so deliveries that failed together (a
    receiver that was down) do not all come back at the same moment."""
    delay = min(cap_s, base_s * 2 ** min(attempts - 1, 60))
    return delay / 2 + random.uniform(0, delay / 2)


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery_id: str
    url: str
    secret_ref: str
    event: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _report(message: str) -> None:
    # Not through upstream's logger: a worker that captures events would store them.
    print(f"fast-agent-db: webhooks: {message}", file=sys.stderr, flush=True)


class WebhookDeliverer:
    """Delivers the outbox of one database; run one per worker (or `webhooks deliver`).

    Args:
        runtime: the database.
        worker_id: who delivers (recorded on each attempt and lease), e.g. `host:pid`.
        max_attempts: attempts before a delivery is `failed` (FAST_AGENT_DB_WEBHOOK_MAX_ATTEMPTS,
            default 20).
        timeout_s: one POST's timeout (FAST_AGENT_DB_WEBHOOK_TIMEOUT, default 10 s).
        retry_base_s, retry_cap_s: the backoff (1 s doubling up to 1 h).
        poll_interval_s: how often an idle deliverer looks (default 1 s on SQLite, 15 s on
            PostgreSQL, which also wakes on NOTIFY).
    """

    def __init__(
        self,
        runtime: DatabaseRuntime,
        worker_id: str,
        *,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval_s: float | None = None,
    ) -> None:
        self._runtime = runtime
        self.worker_id = worker_id
        self.max_attempts = max_attempts if max_attempts is not None else configured_max_attempts()
        self.timeout_s = timeout_s if timeout_s is not None else configured_timeout_s()
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self.batch_size = batch_size
        self._postgres = runtime.engine.dialect.name == "postgresql"
        if poll_interval_s is None:
            poll_interval_s = POSTGRES_POLL_INTERVAL_S if self._postgres else SQLITE_POLL_INTERVAL_S
        self._poll_interval_s = poll_interval_s
        self._client: httpx.AsyncClient | None = None
        # The last delivery of a pass may wait for every round of POSTs before it to time
        # out: its lease must outlast them all, or another deliverer could POST it meanwhile.
        rounds = -(-batch_size // CONCURRENT_POSTS)
        self.lease_s = rounds * self.timeout_s + LEASE_MARGIN_S
        # SQLite has one writer: concurrent records from this process's pool would wait in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms; they take turns here.
        self._sqlite_writes = None if self._postgres else asyncio.Lock()

    # -----------------------------------------------------------------------------------------
    # One pass

    async def deliver_due(self, *, due_by: datetime | None = None) -> int:
        """Claim the due deliveries (up to the batch size), POST them, record each attempt;
        how many were attempted. A delivery is attempted at most once per pass.

        `due_by`: only deliveries due by then (default: now), so that repeated passes from
        one moment never reach the retries they scheduled.
        """
        claimed = await self._claim(due_by)
        if not claimed:
            return 0
        if self._client is not None:
            await self._post_all(self._client, claimed)
        else:
            async with self._new_client() as client:
                await self._post_all(client, claimed)
        return len(claimed)

    def _new_client(self) -> httpx.AsyncClient:
        # No redirects followed: a 3xx is an answer that is not 2xx (the signature is for the
        # URL the webhook names). No environment proxies or .netrc credentials either.
        return httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, trust_env=False)

    async def now(self) -> datetime:
        """The time by the queue's clock: the server's on PostgreSQL (mcp_agent.db.clock)."""
        async with self._runtime.engine.connect() as connection:
            return await database_now(connection, self._postgres)

    async def _claim(self, due_by: datetime | None) -> list[_Claimed]:
        # PostgreSQL: due and leased by the server's clock, so deliverers on several machines
        # need no synchronised clocks.
        now = now_column(self._postgres) if self._postgres else utc_now()
        claimable = (
            _deliveries.c.status == "pending",
            _deliveries.c.next_attempt_at <= now,
            *(() if due_by is None else (_deliveries.c.next_attempt_at <= due_by,)),
            or_(_deliveries.c.lease_expires_at.is_(None), _deliveries.c.lease_expires_at < now),
        )
        # A materialised CTE, run once: as `IN (subquery)` PostgreSQL may rescan the
        # subquery during the update, each rescan locking more rows, so one deliverer took
        # every due row whatever the limit and left none to the others.
        due = (
            select(_deliveries.c.delivery_id)
            .where(*claimable)
            .order_by(_deliveries.c.next_attempt_at, _deliveries.c.delivery_id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        claim = (
            update(_deliveries)
            .where(_deliveries.c.delivery_id == due.c.delivery_id, *claimable)
            .values(
                lease_owner=self.worker_id,
                lease_expires_at=(
                    database_now_plus(self.lease_s)
                    if self._postgres
                    else now + timedelta(seconds=self.lease_s)
                ),
            )
            .returning(
                _deliveries.c.delivery_id,
                _deliveries.c.url,
                _deliveries.c.secret_ref,
                _deliveries.c.event,
                _deliveries.c.payload,
                _deliveries.c.attempts,
            )
        )
        async with self._runtime.engine.begin() as connection:
            rows = (await connection.execute(claim)).all()
        return [_Claimed(*row) for row in rows]

    async def _post_all(self, client: httpx.AsyncClient, claimed: list[_Claimed]) -> None:
        slots = asyncio.Semaphore(CONCURRENT_POSTS)

        async def deliver(delivery: _Claimed) -> None:
            async with slots:
                outcome = await self._post(client, delivery)
            await self._record(delivery, outcome)

        await asyncio.gather(*(deliver(delivery) for delivery in claimed))

    async def _post(self, client: httpx.AsyncClient, delivery: _Claimed) -> _Outcome:
        attempted_at = utc_now()
        try:
            secret = resolve(delivery.secret_ref, field="webhook secret")
        except SecretError as error:
            # Never sent unsigned: the attempt is recorded and retried once the variable is set.
            return _Outcome(attempted_at, None, f"not sent: {error}", None)
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(
            secret=secret,
            body=body,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            timestamp=int(time.time()),
        )
        started = time.perf_counter()
        try:
            response = await client.post(delivery.url, content=body, headers=headers)
        except Exception as error:  # noqa: BLE001 - any failure to send is a failed attempt
            # (httpx.HTTPError mostly; httpx.InvalidURL and encoding errors are not among
            # them, and must not leave the pass's other deliveries unrecorded.)
            duration_ms = round((time.perf_counter() - started) * 1000)
            detail = str(error) or type(error).__name__
            return _Outcome(attempted_at, None, f"{type(error).__name__}: {detail}", duration_ms)
        duration_ms = round((time.perf_counter() - started) * 1000)
        error = None
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        return _Outcome(attempted_at, response.status_code, error, duration_ms)

    async def _record(self, delivery: _Claimed, outcome: _Outcome) -> None:
        attempt = delivery.attempts + 1
        # PostgreSQL: the server's clock decides when it is due again (see _claim).
        now = now_column(self._postgres) if self._postgres else utc_now()
        error = None if outcome.error is None else outcome.error[:_ERROR_MAX]
        state: dict[str, Any] = {
            "attempts": attempt,
            "last_status_code": outcome.status_code,
            "last_error": error,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if outcome.delivered:
            state |= {"status": "delivered", "delivered_at": now}
        elif attempt >= self.max_attempts:
            state |= {"status": "failed"}
        else:
            delay = retry_delay_s(attempt, base_s=self._retry_base_s, cap_s=self._retry_cap_s)
            state |= {
                "next_attempt_at": (
                    database_now_plus(delay)
                    if self._postgres
                    else utc_now() + timedelta(seconds=delay)
                )
            }
        async with self._writing(), self._runtime.engine.begin() as connection:
            await connection.execute(
                insert(_attempts).values(
                    delivery_id=delivery.delivery_id,
                    attempt=attempt,
                    attempted_at=outcome.attempted_at,
                    worker_id=self.worker_id,
                    status_code=outcome.status_code,
                    error=error,
                    duration_ms=outcome.duration_ms,
                )
            )
            kept = await connection.execute(
                update(_deliveries)
                .where(
                    _deliveries.c.delivery_id == delivery.delivery_id,
                    _deliveries.c.lease_owner == self.worker_id,
                    _deliveries.c.status == "pending",
                )
                .values(**state)
            )
        if kept.rowcount == 0:
            _report(
                f"delivery {delivery.delivery_id}: the lease ran out before its attempt was "
                "recorded (another deliverer has it now); the attempt is kept"
            )

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._sqlite_writes or contextlib.nullcontext()

    # -----------------------------------------------------------------------------------------
    # Running

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set: a pass, then wait for a notification (PostgreSQL), the
        next delivery's time, or the poll interval, whichever comes first. A pass in progress
        finishes (each POST is bounded by the timeout)."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake)) if self._postgres else None
        failing = False
        try:
            async with self._new_client() as client:
                self._client = client
                while not stop.is_set():
                    wake.clear()
                    try:
                        attempted = await self.deliver_due()
                        wait_s = 0.0 if attempted >= self.batch_size else await self._idle_s()
                    except Exception as error:  # noqa: BLE001 - the database is away: retry
                        if not failing:
                            _report(f"cannot deliver now ({describe_failure(error)}); retrying")
                        failing = True
                        wait_s = self._poll_interval_s
                    else:
                        if failing:
                            _report("delivering again")
                        failing = False
                    if wait_s > 0:
                        await _first_of(stop, wake, timeout_s=wait_s)
        finally:
            self._client = None
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _idle_s(self) -> float:
        """How long to sleep: until the next pending delivery is due (by the queue's clock),
        at most the poll interval."""
        async with self._runtime.engine.connect() as connection:
            next_at = await connection.scalar(
                select(func.min(_deliveries.c.next_attempt_at)).where(
                    _deliveries.c.status == "pending", _deliveries.c.lease_owner.is_(None)
                )
            )
            if next_at is None:
                return self._poll_interval_s
            now = await database_now(connection, self._postgres)
        return max(0.0, min(self._poll_interval_s, (next_at - now).total_seconds()))

    async def _listen(self, wake: asyncio.Event) -> None:
        """PostgreSQL: LISTEN for new deliveries on a connection of its own; reconnect when it
        breaks (the poll interval covers what was missed meanwhile)."""
        import psycopg

        engine = self._runtime.engine
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        options = {
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            # It only listens: without keepalives a server gone without closing the socket
            # would leave it waiting (polling still delivers meanwhile, later).
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            **kwargs,
            "application_name": "fast-agent-db webhook deliverer",
        }
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(autocommit=True, **options)
                try:
                    await connection.execute(f"LISTEN {DELIVERIES_CHANNEL}")
                    wake.set()
                    async for _notification in connection.notifies():
                        wake.set()
                finally:
                    await connection.close()
            except Exception:  # noqa: BLE001, S110 - polling covers the gap; connect again
                pass
            await asyncio.sleep(self._poll_interval_s)


async def _first_of(*events: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

"""Webhook delivery against a real receiver (http.server on 127.0.0.1) on both backends:
signed POSTs, retries until delivered and never lost, attempts recorded, leases that keep two
deliverers from POSTing one delivery, the outbox written in the run's end transaction, and
the CLI. Retries are made due at once (`retry_base_s=0`) so tests wait on passes, not time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from mcp_agent.db.errors import InputError
from mcp_agent.db.models.runs import (
    RunRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.webhooks.delivery import WebhookDeliverer, retry_delay_s
from mcp_agent.db.webhooks.outbox import enqueue_run_end, insert_run_webhook
from mcp_agent.db.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    verify,
)
from mcp_agent.db.webhooks.sql import SqlWebhookStore
from mcp_agent.db.webhooks.validation import DEFAULT_SECRET_ENV
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S, describe
from tests.support.webhooks import Receiver, ended_run, insert_run_row

SECRET = "whsec-test-7f3a9c1e5b"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(DEFAULT_SECRET_ENV, SECRET)
    return SECRET


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def deliverer(
    runtime: DatabaseRuntime, worker_id: str = "test:1", **options: object
) -> WebhookDeliverer:
    return WebhookDeliverer(runtime, worker_id, retry_base_s=0, **options)  # type: ignore[arg-type]


async def end_a_run(runtime: DatabaseRuntime, **run: object) -> str:
    """A run inserted and ended with its outbox rows in one transaction, as the run store
    does; its id."""
    ended = ended_run(**run)  # type: ignore[arg-type]
    async with runtime.engine.begin() as connection:
        await insert_run_row(connection, ended)
        await enqueue_run_end(connection, ended)
    return ended.run_id


async def wait_until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Wait for `condition()` to hold, under the suite's guard (no speed limit)."""
    async with asyncio.timeout(GUARD_S):
        while True:
            held = condition()
            if held if isinstance(held, bool) else await held:
                return
            await asyncio.sleep(0.02)


async def test_a_receiver_failing_twice_gets_one_signed_delivery_and_3_attempts(
    runtime: DatabaseRuntime, secret: str
) -> None:
    receiver = Receiver(fail_first=2).start()
    try:
        store = SqlWebhookStore(runtime)
        await store.add(receiver.url)
        run_id = await end_a_run(runtime)
        worker = deliverer(runtime)
        assert [await worker.deliver_due() for _ in range(4)] == [1, 1, 1, 0]
    finally:
        receiver.stop()

    assert [request.answered for request in receiver.requests] == [500, 500, 200]
    (accepted,) = receiver.accepted
    (delivery,) = await store.deliveries(run_id=run_id)
    headers = accepted.headers
    assert headers["Content-Type"] == "application/json"
    assert headers[DELIVERY_HEADER] == delivery.delivery_id
    assert headers[EVENT_HEADER] == "run.completed"
    assert headers[SIGNATURE_HEADER] == signature(secret, headers[TIMESTAMP_HEADER], accepted.body)
    assert verify(
        secret,
        body=accepted.body,
        timestamp=headers[TIMESTAMP_HEADER],
        signature_header=headers[SIGNATURE_HEADER],
    )
    assert not verify(
        "another secret",
        body=accepted.body,
        timestamp=headers[TIMESTAMP_HEADER],
        signature_header=headers[SIGNATURE_HEADER],
    )
    assert json.loads(accepted.body) == delivery.payload
    assert documented_check()(secret, headers, accepted.body)
    # The same delivery id on every try: a receiver drops repeats by it.
    assert {request.headers[DELIVERY_HEADER] for request in receiver.requests} == {
        delivery.delivery_id
    }

    assert delivery.status == "delivered" and delivery.attempts == 3
    assert delivery.delivered_at is not None and delivery.last_status_code == 200
    assert delivery.last_error is None
    assert [attempt.attempt for attempt in delivery.attempt_log] == [1, 2, 3]
    assert [attempt.status_code for attempt in delivery.attempt_log] == [500, 500, 200]
    assert [attempt.error for attempt in delivery.attempt_log] == [
        "HTTP 500 Internal Server Error",
        "HTTP 500 Internal Server Error",
        None,
    ]
    assert all(attempt.worker_id == "test:1" for attempt in delivery.attempt_log)
    assert all(attempt.duration_ms is not None for attempt in delivery.attempt_log)


def documented_check() -> Callable[..., bool]:
    """The verification snippet of docs/durable-runs.md, run as written."""
    document = (Path(__file__).parents[1] / "docs" / "durable-runs.md").read_text()
    snippet = document.split("## Webhooks", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(snippet, namespace)  # noqa: S102 - our own documentation
    return namespace["is_fast_agent_delivery"]  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_receiver_that_is_down_is_retried_then_delivered_once(
    runtime: DatabaseRuntime, secret: str
) -> None:
    port = free_port()
    store = SqlWebhookStore(runtime)
    await store.add(f"http://127.0.0.1:{port}/hook")
    run_id = await end_a_run(runtime)
    worker = deliverer(runtime)
    for attempts in (1, 2, 3):
        assert await worker.deliver_due() == 1
        (delivery,) = await store.deliveries(run_id=run_id)
        assert delivery.status == "pending" and delivery.attempts == attempts
        assert delivery.last_status_code is None
        assert delivery.last_error is not None and "ConnectError" in delivery.last_error

    receiver = Receiver(port=port).start()
    try:
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0
    finally:
        receiver.stop()
    assert len(receiver.requests) == 1 and len(receiver.accepted) == 1
    (delivery,) = await store.deliveries(run_id=run_id)
    assert delivery.status == "delivered" and delivery.attempts == 4
    assert [attempt.status_code for attempt in delivery.attempt_log] == [None, None, None, 200]


async def test_after_the_maximum_a_delivery_is_failed_and_kept(
    runtime: DatabaseRuntime, secret: str
) -> None:
    receiver = Receiver(fail_first=1_000).start()
    try:
        store = SqlWebhookStore(runtime)
        await store.add(receiver.url)
        run_id = await end_a_run(runtime)
        worker = deliverer(runtime, max_attempts=2)
        assert [await worker.deliver_due() for _ in range(3)] == [1, 1, 0]
    finally:
        receiver.stop()
    (delivery,) = await store.deliveries(run_id=run_id, status="failed")
    assert delivery.attempts == 2 and len(delivery.attempt_log) == 2
    assert delivery.last_status_code == 500


async def test_a_missing_secret_is_recorded_and_retried_never_sent_unsigned(
    runtime: DatabaseRuntime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEFAULT_SECRET_ENV, raising=False)
    store = SqlWebhookStore(runtime)
    await store.add(receiver.url)
    run_id = await end_a_run(runtime)
    worker = deliverer(runtime)
    assert await worker.deliver_due() == 1
    assert receiver.requests == []
    (delivery,) = await store.deliveries(run_id=run_id)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error is not None
    assert f"{DEFAULT_SECRET_ENV}, which is not set" in delivery.last_error

    monkeypatch.setenv(DEFAULT_SECRET_ENV, SECRET)
    assert await worker.deliver_due() == 1
    assert len(receiver.accepted) == 1
    (delivery,) = await store.deliveries(run_id=run_id)
    assert delivery.status == "delivered" and delivery.attempts == 2


async def test_a_failure_waits_out_a_backoff(runtime: DatabaseRuntime, secret: str) -> None:
    receiver = Receiver(fail_first=1).start()
    try:
        store = SqlWebhookStore(runtime)
        await store.add(receiver.url)
        run_id = await end_a_run(runtime)
        worker = WebhookDeliverer(runtime, "test:1")  # the real backoff: 1 s, with jitter
        before = utc_now()
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0  # not due again yet
    finally:
        receiver.stop()
    (delivery,) = await store.deliveries(run_id=run_id)
    assert before + timedelta(seconds=0.5) <= delivery.next_attempt_at
    assert delivery.next_attempt_at <= utc_now() + timedelta(seconds=1)


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    for attempts, full in ((1, 1), (2, 2), (3, 4), (10, 512), (13, 3600), (500, 3600)):
        for _ in range(20):
            assert full / 2 <= retry_delay_s(attempts) <= full


async def test_a_leased_delivery_waits_for_its_lease_to_expire(
    runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    """A deliverer that died holding a delivery: nobody else POSTs it until the lease ends."""
    await SqlWebhookStore(runtime).add(receiver.url)
    await end_a_run(runtime)
    lease = update(WebhookDeliveryRow).values(lease_owner="dead:1")
    async with runtime.engine.begin() as connection:
        await connection.execute(lease.values(lease_expires_at=utc_now() + timedelta(hours=1)))
    worker = deliverer(runtime)
    assert await worker.deliver_due() == 0
    async with runtime.engine.begin() as connection:
        await connection.execute(lease.values(lease_expires_at=utc_now() - timedelta(seconds=1)))
    assert await worker.deliver_due() == 1
    assert len(receiver.accepted) == 1


async def test_the_outbox_is_written_in_the_transaction_that_ends_the_run(
    runtime: DatabaseRuntime,
) -> None:
    store = SqlWebhookStore(runtime)
    await store.add("https://hooks.example.com/x")
    rolled_back = ended_run()
    async with runtime.engine.connect() as connection:
        transaction = await connection.begin()
        await insert_run_row(connection, rolled_back)
        assert await enqueue_run_end(connection, rolled_back) == 1
        await transaction.rollback()
    assert await store.deliveries() == []

    committed = await end_a_run(runtime)
    (delivery,) = await store.deliveries()
    assert delivery.run_id == committed


async def test_a_webhook_given_at_submit_is_told_of_its_run_only(
    runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    mine, other = ended_run(), ended_run()
    async with runtime.engine.begin() as connection:
        for run in (mine, other):
            await insert_run_row(connection, run)
        webhook_id = await insert_run_webhook(
            connection, run_id=mine.run_id, url=receiver.url, secret_ref=None, events=["failed"]
        )
    store = SqlWebhookStore(runtime)
    (webhook,) = await store.list(run_id=mine.run_id)
    assert webhook.webhook_id == webhook_id and webhook.events == ("run.failed",)
    assert webhook.secret_ref == f"env:{DEFAULT_SECRET_ENV}"
    async with runtime.engine.begin() as connection:
        assert await enqueue_run_end(connection, other) == 0
        failed = ended_run(run_id=mine.run_id, status="failed")
        assert await enqueue_run_end(connection, failed) == 1
    assert await deliverer(runtime).deliver_due() == 1
    assert json.loads(receiver.accepted[0].body)["run"]["status"] == "failed"


async def test_bad_input_at_submit_writes_nothing(runtime: DatabaseRuntime) -> None:
    run = ended_run()
    async with runtime.engine.connect() as connection:
        await connection.begin()
        await insert_run_row(connection, run)
        for bad in (
            {"url": "file:///etc/passwd"},
            {"url": "https://x.example/h", "secret_ref": "plain-secret-value"},
            {"url": "https://x.example/h", "events": ["run.started"]},
        ):
            with pytest.raises(InputError):
                await insert_run_webhook(
                    connection,
                    run_id=run.run_id,
                    **{"secret_ref": None, **bad},  # type: ignore[arg-type]
                )
        assert await connection.scalar(select(func.count()).select_from(WebhookRow)) == 0
    with pytest.raises(Exception, match="no run"):
        await SqlWebhookStore(runtime).add("https://x.example/h", run_id="nosuch")


async def test_two_deliverers_racing_deliver_each_delivery_once(
    database_url: str, secret: str
) -> None:
    receiver = Receiver().start()
    runs = 60
    try:
        async with (
            await DatabaseRuntime.open(database_url) as first,
            await DatabaseRuntime.open(database_url) as second,
        ):
            await SqlWebhookStore(first).add(receiver.url)
            for _ in range(runs):
                await end_a_run(first)

            passes: list[int] = []

            async def drain(worker: WebhookDeliverer) -> None:
                while attempted := await worker.deliver_due():
                    passes.append(attempted)

            await asyncio.gather(
                drain(deliverer(first, "racer:1", batch_size=5)),
                drain(deliverer(second, "racer:2", batch_size=5)),
            )
            async with first.engine.connect() as connection:
                statuses = (
                    await connection.execute(
                        select(WebhookDeliveryRow.status, func.count()).group_by(
                            WebhookDeliveryRow.status
                        )
                    )
                ).all()
                workers = set(
                    await connection.scalars(select(WebhookAttemptRow.worker_id).distinct())
                )
                attempts = await connection.scalar(
                    select(func.count()).select_from(WebhookAttemptRow)
                )
    finally:
        receiver.stop()
    delivered_ids = [request.headers[DELIVERY_HEADER] for request in receiver.requests]
    assert len(delivered_ids) == runs and len(set(delivered_ids)) == runs
    assert dict(statuses) == {"delivered": runs}
    assert attempts == runs
    assert workers == {"racer:1", "racer:2"}
    # Each pass claimed one batch at most (PostgreSQL once claimed every due row in a pass).
    assert max(passes) == 5 and sum(passes) == runs


async def test_a_running_deliverer_wakes_for_new_deliveries(
    runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    """PostgreSQL: NOTIFY wakes it (the poll interval is an hour); SQLite: it polls."""
    postgres = runtime.engine.dialect.name == "postgresql"
    worker = deliverer(runtime, poll_interval_s=3600 if postgres else 0.05)
    await SqlWebhookStore(runtime).add(receiver.url)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        if postgres:
            await wait_until(lambda: _listeners(runtime, 1))
        await end_a_run(runtime)
        await wait_until(lambda: len(receiver.accepted) == 1)
        await end_a_run(runtime)
        await wait_until(lambda: len(receiver.accepted) == 2)
    finally:
        stop.set()
        await running
    assert len(receiver.requests) == 2


async def test_the_secret_is_in_no_table_and_no_cli_output(
    database_url: str, runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    added = await ainvoke("webhooks", "add", receiver.url, "--database-url", database_url)
    assert added.exit_code == 0, added.output
    await end_a_run(runtime)
    assert await deliverer(runtime).deliver_due() == 1
    assert len(receiver.accepted) == 1
    outputs = [
        await ainvoke("webhooks", *command, "--json", "--database-url", database_url)
        for command in (["list", "--all"], ["deliveries"])
    ]
    assert all(result.exit_code == 0 for result in outputs)
    dumped = [result.output for result in outputs]
    async with runtime.engine.connect() as connection:
        for table in (RunRow, WebhookRow, WebhookDeliveryRow, WebhookAttemptRow):
            dumped.extend(str(row) for row in await connection.execute(select(table.__table__)))
    assert dumped and not any(SECRET in text_ for text_ in dumped)


async def test_the_cli_adds_lists_removes_and_delivers(
    database_url: str, runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    async def cli(*args: str, code: int = 0) -> str:
        result = await ainvoke("webhooks", *args, "--database-url", database_url)
        assert result.exit_code == code, result.output
        return result.output

    await cli(
        "add",
        receiver.url,
        "--events",
        "completed,failed",
        "--agent",
        "bot",
        "--secret-env",
        DEFAULT_SECRET_ENV,
    )
    (webhook,) = json.loads(await cli("list", "--json"))
    assert webhook["events"] == ["run.completed", "run.failed"]
    assert webhook["agent_name"] == "bot"
    assert webhook["secret_ref"] == f"env:{DEFAULT_SECRET_ENV}"

    run_id = await end_a_run(runtime, agent_name="bot")
    await end_a_run(runtime, agent_name="someone-else")
    assert "Attempted 1 deliveries" in await cli("deliver", "--once")
    (delivery,) = json.loads(await cli("deliveries", "--run", run_id[:8], "--json"))
    assert delivery["status"] == "delivered" and delivery["run_id"] == run_id
    assert [attempt["status_code"] for attempt in delivery["attempt_log"]] == [200]
    assert json.loads(await cli("deliveries", "--status", "pending", "--json")) == []
    assert "delivered" in await cli("deliveries")

    assert "Removed webhook" in await cli("remove", webhook["webhook_id"][:8])
    assert json.loads(await cli("list", "--json")) == []
    # The delivery stays, without its webhook.
    (kept,) = json.loads(await cli("deliveries", "--format", "json"))
    assert kept["webhook_id"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["add", "ftp://example.com/x"], "URL: must be an http:// or https:// URL"),
        (["add", "https://a:b@example.com/x"], "URL: must not carry credentials"),
        (["add", "https://example.com/x", "--secret-env", "sk-live-abc123"], "--secret-env"),
        (["add", "https://example.com/x", "--events", "started"], "--events: unknown event"),
        (["deliveries", "--status", "lost"], "unknown delivery status 'lost'"),
        (["remove", "nosuchwebhook"], "no webhook 'nosuchwebhook'"),
    ],
)
async def test_the_cli_refuses_bad_input_clearly_and_stores_nothing(
    database_url: str, runtime: DatabaseRuntime, args: list[str], words: str
) -> None:
    result = await ainvoke("webhooks", *args, "--database-url", database_url)
    assert result.exit_code != 0
    assert words in result.output
    assert "sk-live-abc123" not in result.output
    assert await SqlWebhookStore(runtime).list(include_runs=True) == []


@pytest.mark.slow  # a deliver process
async def test_webhooks_deliver_runs_until_sigterm(
    database_url: str, runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    await SqlWebhookStore(runtime).add(receiver.url)
    environment = {**os.environ, DEFAULT_SECRET_ENV: secret}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcp_agent.db.cli",
            "webhooks",
            "deliver",
            "--database-url",
            database_url,
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await end_a_run(runtime)
        await wait_until(lambda: len(receiver.accepted) == 1 or process.poll() is not None)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=GUARD_S)
    finally:
        if process.poll() is None:
            process.kill()
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert process.returncode == 0 and len(receiver.accepted) == 1, describe(done)
    assert secret.encode() not in stdout + stderr


def deliver_process(database_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mcp_agent.db.cli", "webhooks", "deliver"]
        + ["--database-url", database_url],
        env={**os.environ, DEFAULT_SECRET_ENV: SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.one_backend("postgresql")
async def test_two_deliver_processes_racing_deliver_each_delivery_once(
    database_url: str, runtime: DatabaseRuntime
) -> None:
    """Two `webhooks deliver` processes woken by one NOTIFY for 100 deliveries, against a
    slow receiver (each POST takes 20 ms), so both have batches in flight at once."""
    receiver = Receiver(delay_s=0.02).start()
    deliveries = 100
    processes = [deliver_process(database_url) for _ in range(2)]
    try:
        await SqlWebhookStore(runtime).add(receiver.url)
        if runtime.engine.dialect.name == "postgresql":
            await wait_until(lambda: _listeners(runtime, 2))
        async with runtime.engine.begin() as connection:
            for _ in range(deliveries):
                run = ended_run()
                await insert_run_row(connection, run)
                await enqueue_run_end(connection, run)
        await wait_until(
            lambda: (
                len(receiver.requests) >= deliveries
                or any(process.poll() is not None for process in processes)
            )
        )
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [
            await asyncio.to_thread(process.communicate, timeout=GUARD_S) for process in processes
        ]
    finally:
        receiver.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        assert process.returncode == 0, describe(done)
    sent = [request.headers[DELIVERY_HEADER] for request in receiver.requests]
    assert len(sent) == deliveries and len(set(sent)) == deliveries
    async with runtime.engine.connect() as connection:
        per_worker = dict(
            (
                await connection.execute(
                    select(WebhookAttemptRow.worker_id, func.count()).group_by(
                        WebhookAttemptRow.worker_id
                    )
                )
            ).all()
        )
        delivered = await connection.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.status == "delivered", WebhookDeliveryRow.attempts == 1)
        )
    assert delivered == deliveries
    assert len(per_worker) == 2 and sum(per_worker.values()) == deliveries, per_worker


async def _listeners(runtime: DatabaseRuntime, count: int) -> bool:
    async with runtime.engine.connect() as connection:
        found = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'fast-agent-db webhook deliverer' AND query LIKE 'LISTEN%'"
            )
        )
    return found == count


async def test_a_url_that_cannot_be_sent_to_is_a_failed_attempt_of_its_own(
    runtime: DatabaseRuntime, receiver: Receiver, secret: str
) -> None:
    """A delivery whose stored URL httpx refuses (written before a rule, or by hand) fails
    alone: the pass still delivers and records the others."""
    store = SqlWebhookStore(runtime)
    await store.add(receiver.url)
    broken = await store.add("https://hooks.example.com/broken")
    async with runtime.engine.begin() as connection:
        await connection.execute(
            update(WebhookRow)
            .where(WebhookRow.webhook_id == broken.webhook_id)
            .values(url="http://[::1/hook")
        )
    run_id = await end_a_run(runtime)
    assert await deliverer(runtime).deliver_due() == 2
    outcomes = {d.url: d for d in await store.deliveries(run_id=run_id)}
    assert outcomes[receiver.url].status == "delivered"
    refused = outcomes["http://[::1/hook"]
    assert refused.status == "pending" and refused.attempts == 1
    assert refused.last_error is not None and "URL" in refused.last_error

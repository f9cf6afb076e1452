"""Benchmark: webhook delivery to a local receiver, on SQLite and PostgreSQL.

* throughput: N run ends (one delivery each, written by `enqueue_run_end` in one transaction)
  drained by 1 and by 2 deliverers (each with its own engine, as on two machines), to a
  threaded http.server on 127.0.0.1 that answers 200 at once: deliveries per second, from
  the first claim to the last record;
* latency: a running deliverer (`WebhookDeliverer.run`), runs ending one at a time at random
  moments: from the commit of a run's end to the receiver reading the request (p50, p99).
  PostgreSQL wakes the deliverer by NOTIFY; SQLite polls (every second by default).

Run: uv run python benchmarks/webhooks.py [--deliveries 1000] [--ends 50]
Not part of the test suite; an embedded PostgreSQL (or FAST_AGENT_TEST_DATABASE_URL) and a
temporary SQLite file; prints the figures, writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from history import database_url, scratch_database  # noqa: E402
from tests.support.webhooks import Receiver, ended_run, insert_run_row  # noqa: E402

from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.models.runs import RunRow  # noqa: E402
from mcp_agent.db.runtime import DatabaseRuntime  # noqa: E402
from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402
from mcp_agent.db.webhooks.delivery import WebhookDeliverer  # noqa: E402
from mcp_agent.db.webhooks.outbox import enqueue_run_end  # noqa: E402
from mcp_agent.db.webhooks.signing import DELIVERY_HEADER  # noqa: E402
from mcp_agent.db.webhooks.sql import SqlWebhookStore  # noqa: E402
from mcp_agent.db.webhooks.validation import DEFAULT_SECRET_ENV  # noqa: E402


async def end_runs(runtime: DatabaseRuntime, count: int) -> None:
    async with runtime.engine.begin() as connection:
        for _ in range(count):
            run = ended_run()
            await insert_run_row(connection, run)
            await enqueue_run_end(connection, run)


async def throughput(url: str, deliveries: int, deliverers: int) -> float:
    """Deliveries per second with `deliverers` draining `deliveries`."""
    receiver = Receiver().start()
    runtimes = [await DatabaseRuntime.open(url) for _ in range(deliverers)]
    try:
        store = SqlWebhookStore(runtimes[0])
        webhook = await store.add(receiver.url)
        await end_runs(runtimes[0], deliveries)

        async def drain(worker: WebhookDeliverer) -> None:
            while await worker.deliver_due():
                pass

        started = time.perf_counter()
        await asyncio.gather(
            *(
                drain(WebhookDeliverer(runtime, f"bench:{number}"))
                for number, runtime in enumerate(runtimes)
            )
        )
        elapsed = time.perf_counter() - started
        assert len({r.headers[DELIVERY_HEADER] for r in receiver.requests}) == deliveries
        await store.remove(webhook.webhook_id)
        async with runtimes[0].engine.begin() as connection:
            await connection.execute(delete(RunRow))  # deliveries and attempts go with them
        return deliveries / elapsed
    finally:
        receiver.stop()
        for runtime in runtimes:
            await runtime.close()


async def latency(url: str, ends: int) -> list[float]:
    """Milliseconds from each run end's commit to the receiver reading its delivery."""
    receiver = Receiver().start()
    async with await DatabaseRuntime.open(url) as runtime:
        store = SqlWebhookStore(runtime)
        await store.add(receiver.url)
        stop = asyncio.Event()
        running = asyncio.create_task(WebhookDeliverer(runtime, "bench:latency").run(stop))
        await asyncio.sleep(1.0)  # listening
        committed: dict[str, float] = {}
        for _ in range(ends):
            await asyncio.sleep(random.uniform(0.05, 0.3))
            await end_runs(runtime, 1)
            committed_at = time.perf_counter()
            (newest,) = await store.deliveries(limit=1)
            committed[newest.delivery_id] = committed_at
        while len(receiver.requests) < ends:
            await asyncio.sleep(0.01)
        stop.set()
        await running
    receiver.stop()
    arrived = {r.headers[DELIVERY_HEADER]: r.received_at for r in receiver.requests}
    return [(arrived[key] - committed[key]) * 1000 for key in committed]


def percentiles(values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p99 {p99:7.1f} ms"


async def measure(name: str, url: str, deliveries: int, ends: int) -> None:
    for deliverers in (1, 2):
        rate = await throughput(url, deliveries, deliverers)
        print(f"{name:10} throughput, {deliverers} deliverer(s): {rate:8.0f} deliveries/s")
    figures = percentiles(await latency(url, ends))
    print(f"{name:10} latency, commit -> receiver ({ends} ends): {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--ends", type=int, default=50)
    arguments = parser.parse_args()
    os.environ[DEFAULT_SECRET_ENV] = "benchmark-secret"
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/webhooks.db"
        MigrationRunner(url).upgrade()
        asyncio.run(measure("SQLite", url, arguments.deliveries, arguments.ends))
    with postgres_server() as server_url, scratch_database(server_url, "fa_hooks") as database:
        url = make_url(database_url(server_url, database, "postgresql+psycopg"))
        rendered = url.render_as_string(hide_password=False)
        MigrationRunner(rendered).upgrade()
        asyncio.run(measure("PostgreSQL", rendered, arguments.deliveries, arguments.ends))


if __name__ == "__main__":
    main()

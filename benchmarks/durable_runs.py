"""Benchmark: durable runs on one PostgreSQL, against the same runs done in-process.

* Throughput and queue latency at 1, 2, 4, 8 worker processes (`fast-agent-db worker
  --concurrency N`, started and idle first): RUNS runs of a passthrough agent submitted at
  once through SqlRunStore; runs/s from the first submit to the last end; queue latency per
  run from its submit (`created_at`) to its first start (`started_at`), p50/p99.
* In-process: the same runs one after another in this process, as the API's in-process run
  does them (`run_stored_agent`: FastAgent, the session restored, the call recorded).
* Recovery after kill -9, by lease length: a run of the `slow` model (3 s) held by a worker
  process that is killed (SIGKILL, its supervisor first so it is not restarted); a second
  worker, idle, takes it over once the lease has expired. Kill -> claimed again, and kill ->
  completed. Expected: about the lease left at the kill (up to a whole lease, less the time
  since the last renewal) plus up to the idle poll (2 s): expired leases are found by polling.

Also the pickup latency: PICKUPS runs submitted one at a time to idle workers (woken by
NOTIFY), submit -> start.

Run: uv run python benchmarks/durable_runs.py [--runs 40] [--workers 1,2,4,8] [--leases 5,10]
Not part of the test suite; an embedded PostgreSQL, prints a table, writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from history import database_url, scratch_database  # noqa: E402

from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.models.types import utc_now  # noqa: E402
from mcp_agent.db.runs.base import Run, RunSubmission  # noqa: E402
from mcp_agent.db.runs.sql import SqlRunStore  # noqa: E402
from mcp_agent.db.runtime import DatabaseRuntime  # noqa: E402
from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: Runs submitted one at a time to idle workers, per row (the pickup latency).
PICKUPS = 20


def cli(url: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_agent.db.cli", *args, "--database-url", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"fast-agent-db {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def configure(url: str) -> None:
    """Quiet logging and two agents: `echo` (passthrough) and `sleeper` (3 s per call)."""
    for key, value in (
        ("logger.progress_display", "false"),
        ("logger.show_chat", "false"),
        ("logger.show_tools", "false"),
    ):
        cli(url, "config", "set", key, value)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as bundle:
        bundle.write(
            "agents:\n"
            "  - {name: echo, type: agent, model: passthrough}\n"
            "  - {name: sleeper, type: agent, model: slow}\n"
        )
    try:
        cli(url, "agents", "import", bundle.name)
    finally:
        os.unlink(bundle.name)


class WorkerProcess:
    """`fast-agent-db worker`, its stderr in a file (read to know when it is ready)."""

    def __init__(self, url: str, *options: str) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mcp_agent.db.cli", "worker", "--database-url", url, *options],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text()

    async def ready(self, processes: int) -> None:
        while self.output().count("waiting for runs") < processes:
            if self.process.poll() is not None:
                raise SystemExit(f"the worker exited:\n{self.output()}")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.send_signal(signal.SIGTERM)
            self.process.wait()
        os.unlink(self.log.name)


def percentile(values: list[float], cut: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[cut - 1]


async def submit_all(store: SqlRunStore, agent: str, count: int, label: str) -> list[str]:
    return [
        (await store.submit(RunSubmission(agent_name=agent, message=f"{label} {number}"))).run_id
        for number in range(count)
    ]


async def ended(store: SqlRunStore, run_ids: list[str]) -> list[Run]:
    return [await store.wait(run_id) for run_id in run_ids]


async def throughput(
    url: str, workers: int, count: int
) -> tuple[float, float, float, float, float, int]:
    """runs/s and queue latency p50, p99 (ms) of a burst of `count` runs; then the pickup
    latency p50, p99 (ms) of runs submitted one at a time to idle workers; failed runs."""
    worker = WorkerProcess(url, "--concurrency", str(workers))
    try:
        await worker.ready(workers)
        async with await DatabaseRuntime.open(url) as runtime:
            store = SqlRunStore(runtime)
            run_ids = await submit_all(store, "echo", count, f"w{workers}")
            runs = await ended(store, run_ids)
            alone: list[Run] = []
            for number in range(PICKUPS):
                await asyncio.sleep(0.2)  # idle again, listening
                (run_id,) = await submit_all(store, "echo", 1, f"alone {number}")
                alone.extend(await ended(store, [run_id]))
    finally:
        worker.stop()
    failed = sum(run.status != "completed" for run in runs)
    first = min(run.created_at for run in runs)
    last = max(run.finished_at or first for run in runs)
    waits = [
        ((run.started_at or run.created_at) - run.created_at).total_seconds() * 1000 for run in runs
    ]
    rate = count / (last - first).total_seconds()
    pickups = [
        ((run.started_at or run.created_at) - run.created_at).total_seconds() * 1000
        for run in alone
    ]
    failed += sum(run.status != "completed" for run in alone)
    return (
        rate,
        percentile(waits, 50),
        percentile(waits, 99),
        percentile(pickups, 50),
        percentile(pickups, 99),
        failed,
    )


async def in_process(url: str, count: int) -> float:
    """runs/s of the same runs one after another in this process."""
    from mcp_agent.db.runs.agent_runs import run_stored_agent

    # Upstream writes a line to stdout per run even when quiet: not into the table.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        await run_stored_agent(url, "in-process-warm-up", "echo", "warm up", None)
        started = time.monotonic()
        for number in range(count):
            await run_stored_agent(url, f"in-process-{number}", "echo", f"inproc {number}", None)
        return count / (time.monotonic() - started)


async def recovery(url: str, lease_s: float) -> tuple[float, float, str]:
    """Seconds from kill -9 to the run claimed again, and to its end; its final status."""
    pair = [WorkerProcess(url, "--lease", str(lease_s)) for _ in range(2)]
    try:
        for worker in pair:
            await worker.ready(1)
        async with await DatabaseRuntime.open(url) as runtime:
            store = SqlRunStore(runtime)
            (run_id,) = await submit_all(store, "sleeper", 1, f"lease {lease_s}")
            while (run := await store.get(run_id)).status != "running":
                await asyncio.sleep(0.01)
            # Killed mid-call (the model takes 3 s), somewhere in its lease (renewed every
            # third of it): its supervisor first, so it is not restarted.
            holder = int((run.lease_owner or "").rpartition(":")[2])
            (holding,) = [w for w in pair if f"worker {run.lease_owner}:" in w.output()]
            os.kill(holding.process.pid, signal.SIGKILL)
            os.kill(holder, signal.SIGKILL)
            killed = time.monotonic()
            while (now := await store.get(run_id)).lease_epoch < 2:
                if now.status != "running":
                    raise SystemExit(f"the run ended before it could be taken over: {now}")
                await asyncio.sleep(0.05)
            claimed = time.monotonic() - killed
            done = await store.wait(run_id)
            return claimed, time.monotonic() - killed, done.status
    finally:
        for worker in pair:
            worker.stop()


async def measure(url: str, runs: int, worker_counts: list[int], leases: list[float]) -> None:
    print(f"\n{runs} runs of a passthrough agent per row (submitted at once)")
    print(
        f"{'':<22}{'runs/s':>8}{'vs in-process':>15}{'burst queue p50/p99':>22}"
        f"{'idle pickup p50/p99':>22}{'failed':>8}"
    )
    baseline = await in_process(url, runs)
    print(f"{'in-process, serial':<22}{baseline:8.2f}{1.0:14.2f}x{'':>22}{'':>22}{0:8d}")
    for workers in worker_counts:
        rate, p50, p99, pickup50, pickup99, failed = await throughput(url, workers, runs)
        burst = f"{p50:,.0f} / {p99:,.0f} ms"
        pickup = f"{pickup50:,.0f} / {pickup99:,.0f} ms"
        print(
            f"{f'{workers} worker process(es)':<22}{rate:8.2f}{rate / baseline:14.2f}x"
            f"{burst:>22}{pickup:>22}{failed:8d}"
        )
    print("\nrecovery after kill -9 of the worker holding a run (a second worker idle)")
    print(f"{'lease':>8}{'kill -> claimed':>18}{'kill -> ended':>16}{'status':>12}")
    for lease_s in leases:
        claimed, done, status = await recovery(url, lease_s)
        print(f"{lease_s:7g}s{claimed:17.1f}s{done:15.1f}s{status:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per throughput row")
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated process counts")
    parser.add_argument("--leases", default="5,10", help="comma-separated lease lengths (s)")
    arguments = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {platform.system()}, "
        f"{os.cpu_count()} CPUs; {utc_now():%Y-%m-%d %H:%M} UTC"
    )
    with postgres_server() as server_url, scratch_database(server_url, "fa_runs") as database:
        url = make_url(database_url(server_url, database, "postgresql+psycopg"))
        rendered = url.render_as_string(hide_password=False)
        MigrationRunner(rendered).upgrade()
        configure(rendered)
        asyncio.run(
            measure(
                rendered,
                arguments.runs,
                [int(count) for count in arguments.workers.split(",")],
                [float(lease) for lease in arguments.leases.split(",")],
            )
        )


if __name__ == "__main__":
    main()

"""`fast-agent-db worker --concurrency N`: a supervisor of N worker processes
(runs/worker.py), each running one run at a time, plus the webhook deliverer.

Children are restarted when they die; when they keep dying as soon as they start (the
database is away, the schema is wrong), the supervisor gives up. SIGTERM or SIGINT is passed
on to every child: the first stops their claiming and lets runs in progress finish within
the grace period, a second hands those runs back at once. Children run in their own session,
so a terminal's Ctrl-C reaches them only through the supervisor, once; a child whose
supervisor died (kill -9) stops as if told to.

On SQLite one worker with one process is the supported shape (SQLite has one writer at a
time, and workers on several machines cannot share a file): a lock file beside the database
(`<file>.worker-lock`, `flock`) refuses a second worker while the first runs, and
concurrency above 1 is refused.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mcp_agent.db.errors import FastAgentDbError, InputError
from mcp_agent.db.runs.wake import POLL_INTERVAL_S
from mcp_agent.db.runs.worker import DEFAULT_GRACE_S, DEFAULT_LEASE_S, report
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import DATABASE_URL_ENV, is_sqlite, redact_url, sqlite_file, to_async_url
from mcp_agent.db.workers import this_worker

#: Exit codes of `fast-agent-db worker` (1 and 2 are every command's: failure, bad input).
EXIT_STOPPED = 0
EXIT_CHILDREN_KEEP_FAILING = 3
EXIT_STOPPED_UNCLEANLY = 4
#: A child that exits within this many seconds of its start, this many times in a row, is
#: not started again: something outside it is wrong.
QUICK_DEATH_S = 10.0
QUICK_DEATHS_TO_GIVE_UP = 5
#: The most a restart waits (doubling from 1 s after each quick death).
RESTART_DELAY_MAX_S = 30.0


class WorkerRefusedError(FastAgentDbError):
    """The worker cannot run here: another worker holds the SQLite database, or the shape
    asked for is not supported on it."""


def sqlite_worker_lock(raw_url: str, concurrency: int) -> IO[str] | None:
    """On SQLite: hold the database's worker lock for this process's life (the open file is
    returned; closing it, or exiting, releases it). None on PostgreSQL.

    Raises:
        WorkerRefusedError: another worker holds it; the database is in memory;
            concurrency is above 1.
    """
    url = to_async_url(raw_url)
    if not is_sqlite(url):
        return None
    path = sqlite_file(url)
    if path is None:
        raise WorkerRefusedError(
            "a worker cannot use an in-memory SQLite database: nothing else could submit to "
            "it. Give a database file, or PostgreSQL."
        )
    if concurrency != 1:
        raise WorkerRefusedError(
            f"--concurrency {concurrency} is not supported on SQLite: it has one writer at a "
            "time, so one worker process with one run at a time is the supported shape. Use "
            "--concurrency 1, or PostgreSQL for more."
        )
    lock_path = Path(f"{path}.worker-lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise WorkerRefusedError(
            f"another fast-agent-db worker ({holder}) is working on {redact_url(raw_url)}; "
            "SQLite supports one worker at a time (it has one writer at a time). Stop that "
            f"one first, or use PostgreSQL for several workers. (Lock file: {lock_path})"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"worker {this_worker()}\n")
    handle.flush()
    return handle


@dataclass(slots=True)
class _Child:
    slot: int
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Runs `concurrency` worker processes and the webhook deliverer until told to stop.

    Args:
        raw_url: the database (passed to children in their environment, never their argv).
        concurrency: how many worker processes, each one run at a time.
        lease_s, grace_s, poll_s: passed to each worker (runs/worker.py).
    """

    def __init__(
        self,
        raw_url: str,
        *,
        concurrency: int = 1,
        lease_s: float = DEFAULT_LEASE_S,
        grace_s: float = DEFAULT_GRACE_S,
        poll_s: float = POLL_INTERVAL_S,
    ) -> None:
        if concurrency < 1:
            raise InputError("concurrency", f"{concurrency} is out of range: at least 1")
        if lease_s <= 0:
            raise InputError("lease", f"{lease_s:g} must be more than 0 seconds")
        if grace_s < 0:
            raise InputError("grace", f"{grace_s:g} must be 0 or more seconds")
        self.raw_url = raw_url
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.worker_id = this_worker()
        self._stopping = False
        self._signals = 0
        self._children: dict[int, _Child] = {}
        self._changed = asyncio.Event()

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mcp_agent.db.runs.worker",
            "--lease",
            str(self.lease_s),
            "--grace",
            str(self.grace_s),
            "--poll",
            str(self.poll_s),
        ]

    async def _start(self, slot: int) -> None:
        environment = {**os.environ, DATABASE_URL_ENV: self.raw_url}
        process = await asyncio.create_subprocess_exec(
            *self._command(), env=environment, start_new_session=True
        )
        child = _Child(slot, process)
        self._children[slot] = child
        asyncio.get_running_loop().create_task(self._watch(child))

    async def _watch(self, child: _Child) -> None:
        await child.process.wait()
        self._changed.set()

    def _on_signal(self) -> None:
        self._signals += 1
        self._stopping = True
        what = "stopping: runs in progress may finish" if self._signals == 1 else "handing back"
        report(self.worker_id, f"{what} (worker processes: {len(self._children)})")
        for child in self._children.values():
            if child.process.returncode is None:
                try:
                    child.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self._changed.set()

    async def run(self) -> int:
        """Supervise until stopped; the exit code (EXIT_*)."""
        lock = await asyncio.to_thread(sqlite_worker_lock, self.raw_url, self.concurrency)
        try:
            async with await DatabaseRuntime.open(self.raw_url) as runtime:
                return await self._supervise(runtime)
        finally:
            if lock is not None:
                lock.close()

    async def _supervise(self, runtime: DatabaseRuntime) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal)
        report(
            self.worker_id,
            f"supervising {self.concurrency} worker process{'es' * (self.concurrency > 1)} "
            f"on {runtime.display_url} "
            f"(lease {self.lease_s:g} s, grace {self.grace_s:g} s)",
        )
        stop_deliveries = asyncio.Event()
        deliverer = self._start_deliverer(runtime, stop_deliveries)
        for slot in range(self.concurrency):
            await self._start(slot)
        quick_deaths = 0
        unclean = False
        try:
            while True:
                self._changed.clear()
                for slot, child in list(self._children.items()):
                    code = child.process.returncode
                    if code is None:
                        continue
                    del self._children[slot]
                    if self._stopping:
                        if code != 0:
                            unclean = True
                            report(
                                self.worker_id,
                                f"worker process {child.process.pid} "
                                f"{_exit_description(code)} while stopping",
                            )
                        continue
                    lived = time.monotonic() - child.started
                    quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_S else 0
                    report(
                        self.worker_id,
                        f"worker process {child.process.pid} {_exit_description(code)} "
                        f"after {lived:.1f} s; restarting it",
                    )
                    if quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
                        report(
                            self.worker_id,
                            f"worker processes died {quick_deaths} times in a row within "
                            f"{QUICK_DEATH_S:g} s of starting: giving up (see their errors "
                            "above)",
                        )
                        self._on_signal()
                        await self._wait_for_children()
                        return EXIT_CHILDREN_KEEP_FAILING
                    delay = min(2.0 ** max(quick_deaths - 1, 0), RESTART_DELAY_MAX_S)
                    if quick_deaths:
                        await asyncio.sleep(delay)
                    if not self._stopping:
                        await self._start(slot)
                if self._stopping and not self._children:
                    break
                await self._changed.wait()
        finally:
            stop_deliveries.set()
            if deliverer is not None:
                await asyncio.gather(deliverer, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        report(self.worker_id, "stopped" + (" (not every worker stopped cleanly)" * unclean))
        return EXIT_STOPPED_UNCLEANLY if unclean else EXIT_STOPPED

    async def _wait_for_children(self) -> None:
        await asyncio.gather(
            *(child.process.wait() for child in self._children.values()), return_exceptions=True
        )
        self._children.clear()

    def _start_deliverer(
        self, runtime: DatabaseRuntime, stop: asyncio.Event
    ) -> asyncio.Task[None] | None:
        try:
            from mcp_agent.db.webhooks.delivery import WebhookDeliverer
        except ImportError:  # pragma: no cover - shipped together
            return None
        deliverer = WebhookDeliverer(runtime, self.worker_id)
        return asyncio.get_running_loop().create_task(deliverer.run(stop))

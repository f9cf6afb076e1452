"""`fast-agent-db worker`: run the queued runs of the database (runs/supervisor.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import run_async
from mcp_agent.db.runs.supervisor import Supervisor
from mcp_agent.db.runs.worker import DEFAULT_GRACE_S, DEFAULT_LEASE_S
from mcp_agent.db.urls import resolve_database_url


def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            help="Worker processes, each running one run at a time. SQLite: 1 only.",
            min=1,
            max=1024,
        ),
    ] = 1,
    lease: Annotated[
        float,
        typer.Option(
            help="Seconds a run's lease lasts without a heartbeat (renewed every third of it). "
            "A worker lost (kill -9, machine down) has its run taken over this long after.",
            min=1,
        ),
    ] = DEFAULT_LEASE_S,
    grace: Annotated[
        float,
        typer.Option(
            help="On SIGTERM, seconds a run in progress may take to finish before it is "
            "stopped and handed back (queued again, the attempt not counted).",
            min=0,
        ),
    ] = DEFAULT_GRACE_S,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run queued runs (fast-agent-db runs submit) until stopped; deliver webhooks too.

    Claims runs from the database (PostgreSQL: FOR UPDATE SKIP LOCKED, woken by
    LISTEN/NOTIFY; any number of workers on any number of machines), holds each by a lease
    renewed by heartbeat, and ends it. SQLite: one worker at a time with --concurrency 1
    (enforced: a second worker is refused).

    SIGTERM or Ctrl-C: stop claiming, let runs in progress finish within --grace, then hand
    them back; a second signal hands them back at once.

    Exit code: 0 stopped as asked; 1 could not start (the database, another worker on the
    SQLite file); 3 worker processes kept dying as they started (their errors are shown);
    4 stopped, but a worker process did not stop cleanly.
    """
    supervisor = Supervisor(
        resolve_database_url(database_url),
        concurrency=concurrency,
        lease_s=lease,
        grace_s=grace,
    )
    raise typer.Exit(run_async(supervisor.run()))

"""`fast-agent-db logs` and `fast-agent-db prune`."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Annotated

import typer
from rich.table import Table

from mcp_agent.db.cli.executions import is_duration, parse_since
from mcp_agent.db.cli.options import AgentFilterOption, DatabaseUrlOption, SessionFilterOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.queries import LEVELS, read_events
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.retention import PruneReport, prune
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

_STYLE = {"error": "red", "warning": "yellow", "info": "", "debug": "dim", "progress": "dim"}


def _line(record: EventRecord) -> str:
    where = " ".join(
        part for part in (record.agent_name and f"[{record.agent_name}]", record.namespace) if part
    )
    when = record.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{when} {record.level.upper():<7} {where}: {record.message}"


def logs(
    session: SessionFilterOption = None,
    agent: AgentFilterOption = None,
    level: Annotated[str | None, typer.Option("--level", help="Minimum level.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="30m, 24h, 7d or ISO time.")] = None,
    limit: Annotated[
        int, typer.Option(help="Show the newest N first.", min=1, max=INTEGER_MAX)
    ] = 200,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the event log (UTC), oldest first; --follow waits for new events (Ctrl-C stops)."""
    if level is not None and level not in LEVELS:
        fail(f"--level {level!r}: expected one of {', '.join(LEVELS)}", code=EXIT_BAD_INPUT)
    since_time = parse_since(since)

    async def work() -> None:
        # Reading only: a mistyped path creates no database.
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            filters = dict(session_id=session, agent_name=agent, min_level=level, since=since_time)
            last_id: int | None = None
            while True:
                found = await read_events(runtime, after_event_id=last_id, limit=limit, **filters)
                for event_id, record in found:
                    console.print(
                        _line(record),
                        style=_STYLE.get(record.level, ""),
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                    last_id = event_id
                if not follow:
                    return
                if last_id is None:
                    last_id = 0
                await asyncio.sleep(1.0)

    try:
        run_async(work())
    except KeyboardInterrupt:
        pass


def prune_command(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age to keep, e.g. 30d, 12h, 4w.")
    ],
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Also delete sessions (and messages) idle that long.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete events and executions (and with --sessions, idle sessions) older than the age."""
    if not is_duration(older_than):
        fail(
            f"--older-than {older_than!r}: expected an age like 30d, 12h or 4w", code=EXIT_BAD_INPUT
        )
    cutoff = parse_since(older_than, option="--older-than")
    assert cutoff is not None

    async def work() -> PruneReport:
        # Prunes what is there: a mistyped path creates no database.
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            return await prune(runtime, older_than=cutoff, sessions=sessions)

    report = run_async(work())
    table = Table(title=f"pruned: older than {cutoff:%Y-%m-%d %H:%M:%S} UTC")
    table.add_column("what")
    table.add_column("removed", justify="right")
    table.add_row("events", str(report.events))
    if report.partitions_dropped:
        table.add_row("event partitions dropped", ", ".join(report.partitions_dropped))
    table.add_row("executions", str(report.executions))
    if sessions:
        table.add_row("sessions", str(report.sessions))
        table.add_row("messages", str(report.messages))
    console.print(table)

"""`fast-agent-db logs` and `fast-agent-db prune`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Annotated

import typer
from rich.table import Table

from mcp_agent.db.cli.durations import UNITS_HELP, age_cutoff, parse_since
from mcp_agent.db.cli.formats import (
    FormatOption,
    OutputFormat,
    chosen_format,
    print_document,
    to_data,
    write_data,
)
from mcp_agent.db.cli.options import AgentFilterOption, DatabaseUrlOption, SessionFilterOption
from mcp_agent.db.cli.output import confirm_or_stop, console, run_async
from mcp_agent.db.errors import InputError
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.queries import read_events
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.lookups import complete_logged_session_id, require_match
from mcp_agent.db.models.events import EventRow
from mcp_agent.db.retention import PruneReport, prune
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

_STYLE = {"error": "red", "warning": "yellow", "info": "", "debug": "dim", "progress": "dim"}

#: Level names as upstream's config and Python's logging spell them, to the stored ones.
LEVEL_SPELLINGS = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "err": "error",
    "critical": "error",
    "fatal": "error",
}


def parse_level(text: str | None) -> str | None:
    """A minimum level: debug, info, warning (warn), error (err, critical, fatal), any case.

    Raises:
        InputError: naming --level and the accepted spellings.
    """
    if text is None:
        return None
    level = LEVEL_SPELLINGS.get(text.strip().lower())
    if level is None:
        raise InputError(
            f"--level {text!r}",
            "expected debug, info, warning (or warn), error (or err, critical, fatal)",
        )
    return level


def _line(record: EventRecord) -> str:
    where = " ".join(
        part for part in (record.agent_name and f"[{record.agent_name}]", record.namespace) if part
    )
    when = record.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{when} {record.level.upper():<7} {where}: {record.message}"


def _print_event(event_id: int, record: EventRecord, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.JSON:
        # JSON Lines: one event per line, so --follow streams and `jq` reads it.
        write_data(json.dumps({"event_id": event_id, **to_data(record)}, ensure_ascii=False))
    elif output_format is OutputFormat.YAML:
        write_data("---")
        print_document({"event_id": event_id, **to_data(record)}, output_format)
    else:
        console.print(
            _line(record),
            style=_STYLE.get(record.level, ""),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def logs(
    session: SessionFilterOption = None,
    agent: AgentFilterOption = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level", help="Minimum level: debug, info, warning (warn), error (err, critical)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help=f"An age ({UNITS_HELP}) or an ISO time.")
    ] = None,
    limit: Annotated[
        int, typer.Option("-n", "--limit", help="Show the newest N.", min=1, max=INTEGER_MAX)
    ] = 200,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    json_flag: Annotated[
        bool, typer.Option("--json", help="JSON Lines: one event object per line.")
    ] = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the event log (UTC), oldest first; --follow waits for new events (Ctrl-C stops).

    A SESSION may be a unique prefix. With --json each event is one JSON object per line.
    """
    chosen = chosen_format(json_flag, output_format)
    min_level = parse_level(level)
    since_time = parse_since(since)

    async def work() -> None:
        # Reading only: a mistyped path creates no database.
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            session_id = session
            if session is not None:
                session_id = await complete_logged_session_id(runtime, session)
            filters = dict(
                session_id=session_id, agent_name=agent, min_level=min_level, since=since_time
            )
            last_id: int | None = None
            found = await read_events(runtime, limit=limit, **filters)
            if not found and agent is not None:
                await require_match(
                    runtime, EventRow.agent_name, agent, option="--agent", where="event"
                )
            while True:
                for event_id, record in found:
                    _print_event(event_id, record, chosen)
                    last_id = event_id
                if not follow:
                    return
                await asyncio.sleep(1.0)
                found = await read_events(
                    runtime, after_event_id=last_id or 0, limit=limit, **filters
                )

    try:
        run_async(work())
    except KeyboardInterrupt:
        pass


def prune_command(
    older_than: Annotated[
        str,
        typer.Option("--older-than", help=f"Remove what is older than this age ({UNITS_HELP})."),
    ],
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Also delete sessions (and messages) idle that long.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete events and executions (and with --sessions, idle sessions) older than an age.

    Counts first and asks; without a terminal to ask on, it needs --yes. Units: s, min, h,
    d, w (a bare `m` is refused as ambiguous; months and years are written in days).
    """
    cutoff = age_cutoff(older_than, option="--older-than")
    raw_url = resolve_database_url(database_url)

    async def work(apply: bool) -> PruneReport:
        # Prunes what is there: a mistyped path creates no database.
        async with await DatabaseRuntime.open_existing(raw_url) as runtime:
            return await prune(runtime, older_than=cutoff, sessions=sessions, apply=apply)

    counted = run_async(work(apply=False))
    title = f"older than {cutoff:%Y-%m-%d %H:%M:%S} UTC"
    nothing = not (counted.events or counted.executions or counted.sessions)
    if dry_run or nothing:
        _print_report(counted, f"would be removed: {title}", sessions=sessions)
        console.print("Nothing to remove." if nothing else "Dry run: nothing was removed.")
        return
    _print_report(counted, f"to remove: {title}", sessions=sessions)
    confirm_or_stop(
        "Delete these rows?",
        yes=yes,
        what=f"Pruning removes the rows counted above ({_summary(counted, sessions=sessions)})",
    )
    _print_report(run_async(work(apply=True)), f"removed: {title}", sessions=sessions)


def _summary(report: PruneReport, *, sessions: bool) -> str:
    parts = [f"{report.events} events", f"{report.executions} executions"]
    if sessions:
        parts += [f"{report.sessions} sessions", f"{report.messages} messages"]
    return ", ".join(parts)


def _print_report(report: PruneReport, title: str, *, sessions: bool) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_row("events", str(report.events))
    if report.partitions_dropped:
        table.add_row("event partitions dropped", ", ".join(report.partitions_dropped))
    table.add_row("executions (with their sub-calls)", str(report.executions))
    if sessions:
        table.add_row("sessions", str(report.sessions))
        table.add_row("messages", str(report.messages))
    console.print(table)

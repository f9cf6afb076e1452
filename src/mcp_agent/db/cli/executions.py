"""`fast-agent-db executions ...` and `fast-agent-db usage`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from mcp_agent.db.cli.options import (
    AgentFilterOption,
    DatabaseUrlOption,
    SessionFilterOption,
    execution_id_text,
    model_name_text,
)
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.executions.base import ExecutionRecord
from mcp_agent.db.executions.reports import GroupBy, UsageRow, usage_report
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="Executions: list recent runs, show one as a tree.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def is_duration(text: str) -> bool:
    """Whether `text` is an age like `30m`, `24h`, `7d` or `4w`."""
    return _DURATION.match(text.strip()) is not None


def parse_since(text: str | None, *, option: str = "--since") -> datetime | None:
    """`30m`, `24h`, `7d` (ago) or an ISO timestamp (UTC when it names no zone), in UTC.

    A time before the year 1 or after 9999 (Python's, and so both backends', range) is bad
    input naming `option`, not an OverflowError.
    """
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    try:
        if match:
            amount, unit = match.groups()
            return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        fail(
            f"{option} {text!r}: too far from now; times from the year 1 to 9999 can be given",
            code=EXIT_BAD_INPUT,
        )
    except ValueError:
        fail(
            f"{option} {text!r}: expected a duration like 30m, 24h, 7d or an ISO timestamp",
            code=EXIT_BAD_INPUT,
        )


def _cost(cost: Decimal | None) -> str:
    return "" if cost is None else f"${cost:.6f}"


def _label(record: ExecutionRecord) -> str:
    duration = record.duration_seconds
    timing = f"{duration:.2f}s" if duration is not None else "…"
    tokens = f"{record.input_tokens} in / {record.output_tokens} out"
    cost = f", {_cost(record.cost)}" if record.cost is not None else ""
    status = "" if record.status == "completed" else f" [red]{record.status}[/]"
    return f"[bold]{record.agent_name}[/] {record.operation}{status}  {timing}  {tokens}{cost}"


async def _with_store(database_url: str | None, work):  # noqa: ANN001, ANN202 - small adapter
    # Reading only: a mistyped path creates no database.
    async with await DatabaseRuntime.open_existing(resolve_database_url(database_url)) as runtime:
        return await work(SqlExecutionStore(runtime))


@app.command("list")
def list_(
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=INTEGER_MAX)
    ] = 20,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List recent user-level executions."""
    roots = run_async(_with_store(database_url, lambda store: store.roots(limit=limit)))
    table = Table(title="executions")
    # The id is what `executions show` takes: never wrapped or cut.
    table.add_column("execution", no_wrap=True, min_width=36)
    for column in ("started (UTC)", "agent", "status", "tokens in/out", "cost"):
        table.add_column(column)
    for root in roots:
        table.add_row(
            root.execution_id,
            f"{root.started_at:%Y-%m-%d %H:%M:%S}",
            root.agent_name,
            root.status,
            f"{root.input_tokens}/{root.output_tokens}",
            _cost(root.cost),
        )
    console.print(table)


@app.command()
def show(
    execution_id: Annotated[
        str,
        typer.Argument(
            help="The execution (see executions list).",
            metavar="EXECUTION_ID",
            parser=execution_id_text,
        ),
    ],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show an execution and its sub-calls as a tree with durations, tokens and cost."""
    records = run_async(_with_store(database_url, lambda store: store.tree(execution_id)))
    if not records:
        fail(f"no execution {execution_id!r}", code=EXIT_BAD_INPUT)
    nodes: dict[str, Tree] = {}
    root_tree: Tree | None = None
    for record in records:  # parents start before their children
        node = (
            nodes[record.parent_execution_id].add(_label(record))
            if record.parent_execution_id in nodes
            else Tree(_label(record))
        )
        nodes[record.execution_id] = node
        root_tree = root_tree or node
    console.print(root_tree)
    if records[0].settings_source:
        console.print(f"settings: {records[0].settings_source}", markup=False, highlight=False)


def usage(
    session: SessionFilterOption = None,
    agent: AgentFilterOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model.", parser=model_name_text)
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="30m, 24h, 7d or ISO time.")] = None,
    by: Annotated[str, typer.Option("--by", help="Group by model, agent or session.")] = "model",
    database_url: DatabaseUrlOption = None,
) -> None:
    """Token usage and cost of provider calls, grouped."""
    if by not in ("model", "agent", "session"):
        fail(f"--by {by!r}: expected model, agent or session", code=EXIT_BAD_INPUT)
    group: GroupBy = by  # type: ignore[assignment]
    since_time = parse_since(since)

    async def work() -> list[UsageRow]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            return await usage_report(
                runtime,
                group_by=group,
                session_id=session,
                agent_name=agent,
                model=model,
                since=since_time,
            )

    rows = run_async(work())
    table = Table(title=f"usage by {by}")
    for column in (by, "calls", "input", "output", "cached", "reasoning", "cost"):
        table.add_column(column, justify="left" if column == by else "right")
    for row in rows:
        table.add_row(
            row.key,
            str(row.calls),
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.cache_read_tokens:,}",
            f"{row.reasoning_tokens:,}",
            _cost(row.cost),
        )
    console.print(table)

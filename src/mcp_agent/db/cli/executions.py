"""`fast-agent-db executions ...` and `fast-agent-db usage`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer
from rich.tree import Tree

from mcp_agent.db.cli.durations import UNITS_HELP, parse_since
from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
)
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
from mcp_agent.db.lookups import complete_execution_id, complete_session_id, require_match
from mcp_agent.db.models.executions import ExecutionRow, UsageTurnRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="Executions: list recent runs, show one as a tree.", no_args_is_help=True)


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
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List recent user-level executions."""
    chosen = chosen_format(json_flag, output_format)
    roots = run_async(_with_store(database_url, lambda store: store.roots(limit=limit)))
    print_rows(
        roots,
        [
            # The id is what `executions show` takes: never wrapped or cut.
            Column("execution", lambda root: root.execution_id, typed=True),
            Column("started (UTC)", lambda root: f"{root.started_at:%Y-%m-%d %H:%M:%S}"),
            Column("agent", lambda root: root.agent_name, typed=True),
            Column("session", lambda root: root.session_id or "", typed=True),
            Column("status", lambda root: root.status),
            Column("tokens in/out", lambda root: f"{root.input_tokens}/{root.output_tokens}"),
            Column("cost", lambda root: _cost(root.cost), justify="right"),
        ],
        title="executions",
        output_format=chosen,
        wide=wide,
    )


@app.command()
def show(
    execution_id: Annotated[
        str,
        typer.Argument(
            help="The execution (see executions list), or a unique prefix of it.",
            metavar="EXECUTION_ID",
            parser=execution_id_text,
        ),
    ],
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show an execution and its sub-calls as a tree with durations, tokens and cost."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> list[ExecutionRecord]:
        raw_url = resolve_database_url(database_url)
        async with await DatabaseRuntime.open_existing(raw_url) as runtime:
            full_id = await complete_execution_id(runtime, execution_id)
            return await SqlExecutionStore(runtime).tree(full_id)

    records = run_async(work())
    if chosen is not OutputFormat.TABLE:
        # Parents start before their children; parent_execution_id links the tree.
        print_document({"execution_id": records[0].execution_id, "executions": records}, chosen)
        return
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
    since: Annotated[
        str | None, typer.Option("--since", help=f"An age ({UNITS_HELP}) or an ISO time.")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Group by model, agent or session.")] = "model",
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Token usage and cost of provider calls, grouped."""
    if by not in ("model", "agent", "session"):
        fail(f"--by {by!r}: expected model, agent or session", code=EXIT_BAD_INPUT)
    chosen = chosen_format(json_flag, output_format)
    group: GroupBy = by  # type: ignore[assignment]
    since_time = parse_since(since)

    async def work() -> list[UsageRow]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            session_id = None if session is None else await complete_session_id(runtime, session)
            rows = await usage_report(
                runtime,
                group_by=group,
                session_id=session_id,
                agent_name=agent,
                model=model,
                since=since_time,
            )
            if not rows:
                # Nothing matched: a filter naming nothing is a typo, said as such.
                if agent is not None:
                    await require_match(
                        runtime, ExecutionRow.agent_name, agent, option="--agent", where="execution"
                    )
                if model is not None:
                    await require_match(
                        runtime, UsageTurnRow.model, model, option="--model", where="provider call"
                    )
            return rows

    rows = run_async(work())
    print_rows(
        rows,
        [
            Column(by, lambda row: row.key, typed=True),
            Column("calls", lambda row: str(row.calls), justify="right"),
            Column("input", lambda row: f"{row.input_tokens:,}", justify="right"),
            Column("output", lambda row: f"{row.output_tokens:,}", justify="right"),
            Column("cached", lambda row: f"{row.cache_read_tokens:,}", justify="right"),
            Column("reasoning", lambda row: f"{row.reasoning_tokens:,}", justify="right"),
            Column("cost", lambda row: _cost(row.cost), justify="right"),
        ],
        title=f"usage by {by}",
        output_format=chosen,
        wide=wide,
        document=[_usage_document(row, by) for row in rows],
    )


def _usage_document(row: UsageRow, by: str) -> dict[str, object]:
    """A usage row as `usage --json` prints it: its group under the --by name."""
    return {
        by: row.key,
        "calls": row.calls,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": row.cost,
    }

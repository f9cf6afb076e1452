"""`fast-agent-db db ...`: create, upgrade, downgrade and inspect the schema."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import console, run_async
from mcp_agent.db.inspection import SchemaStatus, describe_schema
from mcp_agent.db.migration_runner import MigrationRunner, head_revision
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import redact_url, resolve_database_url

app = typer.Typer(
    help="Create, upgrade and inspect the fast-agent-db schema.", no_args_is_help=True
)


async def _migrate(raw_url: str, target: str, *, up: bool) -> tuple[str | None, str | None]:
    """Upgrade or downgrade to `target`; returns the revisions before and after."""

    def work() -> tuple[str | None, str | None]:
        with MigrationRunner(raw_url) as runner:
            before = runner.current()
            (runner.upgrade if up else runner.downgrade)(target)
            return before, runner.current()

    return await asyncio.to_thread(work)


async def _status(raw_url: str) -> SchemaStatus:
    async with await DatabaseRuntime.open(raw_url, check_schema=False) as runtime:
        return await describe_schema(runtime)


def upgrade_database(raw_url: str, revision: str = "head") -> None:
    """Upgrade and report: shared by `db upgrade` and the tour."""
    with console.status(f"Upgrading {redact_url(raw_url)} to {revision}..."):
        before, after = run_async(_migrate(raw_url, revision, up=True))
    if before == after:
        console.print(f"Schema already at [bold]{after}[/] ({redact_url(raw_url)}).")
    else:
        console.print(
            f"Upgraded {redact_url(raw_url)} from [bold]{before or 'empty'}[/] to [bold]{after}[/]."
        )


def print_status(status: SchemaStatus) -> None:
    state = "[green]current[/]" if status.is_current else "[yellow]needs upgrade[/]"
    console.print(f"Database: {status.display_url} ({status.dialect})")
    revision = status.revision or "none"
    console.print(f"Schema revision: [bold]{revision}[/] (head {status.head}, {state})")
    table = Table(title="fast-agent-db tables")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for table_status in status.tables:
        table.add_row(table_status.name, str(table_status.row_count))
    console.print(table)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create the schema or bring it up to date (creates the SQLite file if needed)."""
    upgrade_database(resolve_database_url(database_url), revision)


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base' to drop all tables.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Downgrade the schema to REVISION. 'base' removes every fast-agent-db table and its data."""
    raw_url = resolve_database_url(database_url)
    before, after = run_async(_migrate(raw_url, revision, up=False))
    console.print(
        f"Downgraded {redact_url(raw_url)} from [bold]{before or 'empty'}[/] "
        f"to [bold]{after or 'base'}[/]."
    )


@app.command()
def current(database_url: DatabaseUrlOption = None) -> None:
    """Print the database's schema revision and the revision this code needs."""
    status = run_async(_status(resolve_database_url(database_url)))
    console.print(f"{status.revision or 'none'} (head: {head_revision()})")


@app.command()
def status(database_url: DatabaseUrlOption = None) -> None:
    """Show the schema revision and every fast-agent-db table with its row count."""
    print_status(run_async(_status(resolve_database_url(database_url))))

"""`fast-agent-db db ...`: create, upgrade, downgrade and inspect the schema."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mcp_agent.db.cli import db_local
from mcp_agent.db.cli.formats import (
    FormatOption,
    JsonOption,
    OutputFormat,
    chosen_format,
    print_document,
)
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.inspection import SchemaStatus, describe_schema
from mcp_agent.db.schema_head import SCHEMA_HEAD

if TYPE_CHECKING:
    from mcp_agent.db.migration_runner import DowngradePlan
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import redact_url, resolve_database_url

app = typer.Typer(
    help="Create, upgrade and inspect the fast-agent-db schema.", no_args_is_help=True
)
app.add_typer(db_local.app, name="local")


async def _migrate(
    raw_url: str, target: str, *, up: bool, confirmed: DowngradePlan | None = None
) -> tuple[str | None, str | None]:
    """Upgrade or downgrade to `target`; returns the revisions before and after."""

    from mcp_agent.db.migration_runner import MigrationRunner  # Alembic: only to migrate

    def work() -> tuple[str | None, str | None]:
        with MigrationRunner(raw_url) as runner:
            before = runner.current()
            if up:
                runner.upgrade(target)
            else:
                runner.downgrade(target, confirmed=confirmed)
            return before, runner.current()

    return await asyncio.to_thread(work)


async def _plan_downgrade(raw_url: str, target: str) -> DowngradePlan:
    from mcp_agent.db.migration_runner import MigrationRunner

    def work() -> DowngradePlan:
        with MigrationRunner(raw_url) as runner:
            return runner.plan_downgrade(target)

    return await asyncio.to_thread(work)


async def _status(raw_url: str) -> SchemaStatus:
    # Reading the status creates nothing: not a missing SQLite file, not a schema.
    async with await DatabaseRuntime.open_existing(raw_url, check_schema=False) as runtime:
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


def _print_plan(display_url: str, plan: DowngradePlan) -> None:
    route = f"from [bold]{plan.current}[/] to [bold]{plan.target or 'base'}[/]"
    if not plan.deletes_data:
        console.print(f"Downgrading {display_url} {route} deletes no data.")
        return
    console.print(f"Downgrading {display_url} {route} deletes:")
    for loss in plan.losses:
        console.print(f"  {loss}", markup=False, highlight=False)


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base' to drop all tables.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete what the downgrade deletes without asking.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what the downgrade would delete.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Downgrade the schema to REVISION. 'base' removes every fast-agent-db table and its data.

    Says first how many rows of what it deletes, and asks; without a terminal to ask on,
    it needs --yes.
    """
    raw_url = resolve_database_url(database_url)
    display_url = redact_url(raw_url)
    plan = run_async(_plan_downgrade(raw_url, revision))
    if plan.current == plan.target:
        console.print(f"Schema already at [bold]{plan.current or 'base'}[/] ({display_url}).")
        return
    _print_plan(display_url, plan)
    if dry_run:
        console.print("Dry run: nothing was changed.")
        return
    confirmed: DowngradePlan | None = None
    if plan.deletes_data and not yes:
        # sys.stdin is None when the process was started with descriptor 0 closed.
        if sys.stdin is None or not sys.stdin.isatty():
            fail(
                "The downgrade deletes the data listed above, and there is no terminal to ask "
                "on: pass --yes to go ahead. Nothing was changed.",
                code=EXIT_BAD_INPUT,
            )
        if not typer.confirm("Delete it and downgrade?", default=False):
            fail("Downgrade cancelled. Nothing was changed.")
        # Held to what was agreed: rows written in the meantime stop the downgrade.
        confirmed = plan
    before, after = run_async(_migrate(raw_url, revision, up=False, confirmed=confirmed))
    console.print(
        f"Downgraded {display_url} from [bold]{before or 'empty'}[/] to [bold]{after or 'base'}[/]."
    )


def _status_document(status: SchemaStatus) -> dict[str, object]:
    return {
        "database_url": status.display_url,
        "dialect": status.dialect,
        "revision": status.revision,
        "head": status.head,
        "is_current": status.is_current,
        "tables": {table.name: table.row_count for table in status.tables},
    }


@app.command()
def current(
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print the database's schema revision and the revision this code needs."""
    chosen = chosen_format(json_flag, output_format)
    status = run_async(_status(resolve_database_url(database_url)))
    if chosen is not OutputFormat.TABLE:
        document = _status_document(status)
        del document["tables"]
        print_document(document, chosen)
        return
    console.print(f"{status.revision or 'none'} (head: {SCHEMA_HEAD})")


@app.command()
def status(
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the schema revision and every fast-agent-db table with its row count."""
    chosen = chosen_format(json_flag, output_format)
    schema = run_async(_status(resolve_database_url(database_url)))
    if chosen is not OutputFormat.TABLE:
        print_document(_status_document(schema), chosen)
        return
    print_status(schema)

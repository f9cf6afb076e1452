"""`fast-agent-db check`: upstream's configuration check, reporting the database when one is
configured (upstream's own check only knows fastagent.config.yaml and would say "not found").

With a database: its URL (redacted), schema revision, where runs take their settings from
(the same precedence as a run, see fastagent.py), and the providers and MCP servers stored
there. With no database configured anywhere, upstream's check runs unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from mcp_agent.cli.commands import check_config as upstream_check
from rich.table import Table

from mcp_agent.db.activation import configured_database_url
from mcp_agent.db.cli.output import console, run_async
from mcp_agent.db.fastagent import holds_no_settings
from mcp_agent.db.migration_runner import head_revision, known_revisions
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.document import document_to_display
from mcp_agent.db.settings.secrets import is_reference
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.urls import DEFAULT_DATABASE_FILE

app = typer.Typer(
    help="Show or diagnose the configuration: the database's when one is configured.",
    invoke_without_command=True,
)
app.command("show")(upstream_check.show)


@dataclass(frozen=True, slots=True)
class DatabaseReport:
    display_url: str
    dialect: str
    revision: str | None
    settings: dict[str, Any] | None
    holds_settings: bool


def _database_in_use(explicit: str | None) -> str | None:
    """The database a run here would use, or None when none is configured anywhere."""
    if explicit:
        return explicit
    configured = configured_database_url()
    if configured:
        return configured
    default = Path(DEFAULT_DATABASE_FILE)
    return f"sqlite:///{DEFAULT_DATABASE_FILE}" if default.is_file() else None


async def _report(raw_url: str) -> DatabaseReport:
    async with await DatabaseRuntime.open_existing(raw_url, check_schema=False) as runtime:
        revision = await runtime.schema_revision()
        document = None
        if revision == head_revision():
            document = await SqlSettingsStore(runtime).load_document()
        return DatabaseReport(
            display_url=runtime.display_url,
            dialect=runtime.dialect,
            revision=revision,
            settings=document_to_display(document) if document is not None else None,
            holds_settings=document is not None and not holds_no_settings(document),
        )


def _schema_state(revision: str | None) -> str:
    head = head_revision()
    if revision == head:
        return f"{revision} (current)"
    if revision is None:
        return f"none yet (created at head {head} on first use, or by `fast-agent-db db upgrade`)"
    if revision not in known_revisions():
        return f"{revision} (newer than this fast-agent-db, which knows up to {head})"
    return f"{revision} (older: run `fast-agent-db db upgrade` to reach {head})"


def _key_state(value: Any) -> str:
    if not value:
        return "not set (environment variable, if any)"
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        name = value[2:-1]
        return f"{value} ({'set' if os.environ.get(name) else 'NOT SET in this environment'})"
    return str(value) if is_reference(value) or value.startswith("<") else "<secret>"


def _print_report(report: DatabaseReport) -> None:
    console.print(f"Database: {report.display_url} ({report.dialect})", highlight=False)
    console.print(f"Schema revision: {_schema_state(report.revision)}", highlight=False)
    if report.settings is None:
        return
    if not report.holds_settings:
        discovered = upstream_check.find_config_files(Path.cwd())["config"]
        source = (
            f"none stored: runs use {discovered} (store it with: fast-agent-db config import "
            f"{discovered})"
            if discovered
            else "none stored, and no fastagent.config.yaml here: runs use defaults and the "
            "environment"
        )
        console.print(f"Settings: {source}", highlight=False)
        return
    console.print(
        "Settings: the database (a configuration file named by a program or --config-path "
        "is used for that run instead)",
        highlight=False,
    )
    console.print(f"Default model: {report.settings.get('default_model') or '-'}", highlight=False)
    providers = Table(title="providers")
    for column in ("provider", "api_key", "base_url"):
        providers.add_column(column)
    for name, section in report.settings.items():
        if isinstance(section, dict) and ("api_key" in section or "base_url" in section):
            providers.add_row(
                name, _key_state(section.get("api_key")), str(section.get("base_url") or "-")
            )
    console.print(providers)
    servers = Table(title="MCP servers")
    for column in ("name", "transport", "command / url"):
        servers.add_column(column)
    for name, server in (report.settings.get("mcp", {}).get("servers", {}) or {}).items():
        target = server.get("url") or " ".join(
            [server.get("command") or "", *(server.get("args") or [])]
        )
        servers.add_row(name, server.get("transport") or "stdio", target.strip())
    console.print(servers)


@app.callback()
def check(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The database to check (default: FAST_AGENT_DATABASE_URL, database.url in "
            "fastagent.config.yaml, or ./fastagent.db if it exists).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the configuration: the database's (URL, schema, settings, providers, servers)
    when one is configured, else upstream's check of fastagent.config.yaml."""
    if ctx.invoked_subcommand is not None:
        return
    # `fast-agent-db --database-url URL check` names it on the root command.
    given_on_root = ctx.parent.params.get("database_url") if ctx.parent is not None else None
    raw_url = _database_in_use(database_url or given_on_root)
    if raw_url is None:
        upstream_check.show_check_summary()
        return
    _print_report(run_async(_report(raw_url)))

"""`fast-agent-db agents ...`: agent and workflow definitions, versioned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mcp_agent.db.cli.config import current_user
from mcp_agent.db.cli.options import DatabaseUrlOption, agent_name_text
from mcp_agent.db.cli.output import console, error_console, run_async
from mcp_agent.db.definitions.bundles import bundle_yaml, read_bundle
from mcp_agent.db.definitions.specs import AgentDefinition, DefinitionError, PutResult
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.limits import VERSION_RANGE
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.yaml_files import dump_yaml
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(
    help="Agent and workflow definitions: list, show, history, rollback, delete, import, export.",
    no_args_is_help=True,
)


async def _with_store(database_url: str | None, work):  # noqa: ANN001, ANN202 - small adapter
    """Run `work` on the definitions of a database that exists: only `agents import` (which
    goes through `_with_new_or_existing_store`) may create one."""
    async with await DatabaseRuntime.open_existing(resolve_database_url(database_url)) as runtime:
        return await work(SqlDefinitionStore(runtime))


async def _with_new_or_existing_store(database_url: str | None, work):  # noqa: ANN001, ANN202
    async with await DatabaseRuntime.open(resolve_database_url(database_url)) as runtime:
        return await work(SqlDefinitionStore(runtime))


def _name_argument(help_text: str) -> typer.models.ArgumentInfo:
    return typer.Argument(help=help_text, metavar="NAME", parser=agent_name_text)


def _print_results(results: list[PutResult]) -> None:
    for result in results:
        console.print(f"  {result.outcome:<9} {result.name} (version {result.version})")


@app.command("list")
def list_(database_url: DatabaseUrlOption = None) -> None:
    """List the current definitions."""
    definitions: dict[str, AgentDefinition] = run_async(
        _with_store(database_url, lambda store: store.current())
    )
    table = Table(title="agents")
    for column in ("name", "type", "version", "children / servers", "model", "source"):
        table.add_column(column)
    for definition in definitions.values():
        spec = definition.spec
        children = ", ".join(child for _role, _pos, child in spec.links())
        servers = ", ".join(spec.server_names())
        table.add_row(
            spec.name + (" (default)" if spec.default else ""),
            spec.type + (" (needs script)" if getattr(spec, "requires_script", False) else ""),
            str(definition.version),
            " | ".join(part for part in (children, servers) if part),
            getattr(spec, "model", None) or "",
            definition.source or "",
        )
    console.print(table)


@app.command()
def show(
    name: Annotated[str, _name_argument("The agent.")],
    version: Annotated[
        int | None,
        typer.Option(
            help="A version (default: current).", min=VERSION_RANGE[0], max=VERSION_RANGE[1]
        ),
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one definition as YAML."""
    definition: AgentDefinition = run_async(
        _with_store(database_url, lambda store: store.get(name, version))
    )
    console.print(
        f"# {name} version {definition.version}, {definition.source or 'unknown source'}, "
        f"{definition.created_at:%Y-%m-%d %H:%M:%S} UTC",
        markup=False,
        highlight=False,
    )
    console.print(
        dump_yaml(definition.spec.model_dump(mode="json", exclude_none=True)),
        markup=False,
        highlight=False,
        end="",
    )


@app.command()
def history(
    name: Annotated[str, _name_argument("The agent.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """List every version of an agent."""
    versions: list[AgentDefinition] = run_async(
        _with_store(database_url, lambda store: store.versions(name))
    )
    table = Table(title=f"versions of {name}")
    for column in ("version", "created (UTC)", "source", "by", "type", "hash"):
        table.add_column(column)
    for definition in versions:
        table.add_row(
            str(definition.version),
            f"{definition.created_at:%Y-%m-%d %H:%M:%S}",
            definition.source or "",
            definition.created_by or "",
            definition.spec.type,
            definition.content_hash[:12],
        )
    console.print(table)


@app.command()
def rollback(
    name: Annotated[str, _name_argument("The agent.")],
    version: Annotated[
        int,
        typer.Argument(
            help="The version to restore.",
            metavar="VERSION",
            min=VERSION_RANGE[0],
            max=VERSION_RANGE[1],
        ),
    ],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Restore an earlier version (as a new version; history is never rewritten)."""
    result = run_async(
        _with_store(
            database_url, lambda store: store.rollback(name, version, created_by=current_user())
        )
    )
    _print_results([result])


@app.command()
def delete(
    name: Annotated[str, _name_argument("The agent.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete an agent (refused while another agent refers to it). Its history is kept."""
    run_async(_with_store(database_url, lambda store: store.delete(name)))
    console.print(f"Deleted {name}.")


@app.command("import")
def import_(
    bundle: Annotated[
        Path, typer.Argument(help="A YAML bundle (agents: [...]) or an upstream-style .py script.")
    ],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Import definitions in one transaction. A script's decorators are registered; its main
    does not run."""
    specs = read_bundle(bundle)
    results = run_async(
        _with_new_or_existing_store(
            database_url,
            lambda store: store.put(specs, source="import", created_by=current_user()),
        )
    )
    _print_results(results)


@app.command()
def export(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Agents (default: all).", metavar="NAME...", parser=agent_name_text),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export definitions as a YAML bundle that `agents import` reads back."""
    definitions: dict[str, AgentDefinition] = run_async(
        _with_store(database_url, lambda store: store.current(names or None))
    )
    missing = sorted(set(names or []) - set(definitions))
    if missing:
        raise DefinitionError([f"{name}: no such agent definition" for name in missing])
    text = bundle_yaml(definitions.values())
    if output is None:
        console.print(text, markup=False, highlight=False, end="")
    else:
        output.write_text(text, encoding="utf-8")
        error_console.print(f"Wrote {len(definitions)} definition(s) to {output}")

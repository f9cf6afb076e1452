"""`fast-agent-db agents ...`: agent and workflow definitions, versioned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcp_agent.db.cli.config import current_user
from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
    write_data,
)
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


def _definition_document(definition: AgentDefinition) -> dict[str, object]:
    """A definition as `agents list/show/history --json` print it (docs/cli-output.md)."""
    return {
        "name": definition.name,
        "type": definition.spec.type,
        "version": definition.version,
        "created_at": definition.created_at,
        "source": definition.source,
        "created_by": definition.created_by,
        "content_hash": definition.content_hash,
        "spec": definition.spec.model_dump(mode="json", exclude_none=True),
    }


def _links(definition: AgentDefinition) -> str:
    spec = definition.spec
    children = ", ".join(child for _role, _pos, child in spec.links())
    servers = ", ".join(spec.server_names())
    return " | ".join(part for part in (children, servers) if part)


@app.command("list")
def list_(
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the current definitions."""
    chosen = chosen_format(json_flag, output_format)
    definitions: dict[str, AgentDefinition] = run_async(
        _with_store(database_url, lambda store: store.current())
    )
    rows = list(definitions.values())
    print_rows(
        rows,
        [
            Column("name", lambda d: d.name, typed=True),
            Column("default", lambda d: "yes" if d.spec.default else ""),
            Column(
                "type",
                lambda d: (
                    d.spec.type
                    + (" (needs script)" if getattr(d.spec, "requires_script", False) else "")
                ),
            ),
            Column("version", lambda d: str(d.version), justify="right"),
            Column("children / servers", _links),
            Column("model", lambda d: getattr(d.spec, "model", None) or "", typed=True),
            Column("source", lambda d: d.source or ""),
        ],
        title="agents",
        output_format=chosen,
        wide=wide,
        document=[_definition_document(definition) for definition in rows],
    )


@app.command()
def show(
    name: Annotated[str, _name_argument("The agent.")],
    version: Annotated[
        int | None,
        typer.Option(
            help="A version (default: current).", min=VERSION_RANGE[0], max=VERSION_RANGE[1]
        ),
    ] = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one definition: as YAML with a comment line (default), or as JSON/YAML data."""
    chosen = chosen_format(json_flag, output_format)
    definition: AgentDefinition = run_async(
        _with_store(database_url, lambda store: store.get(name, version))
    )
    if chosen is not OutputFormat.TABLE:
        print_document(_definition_document(definition), chosen)
        return
    write_data(
        f"# {name} version {definition.version}, {definition.source or 'unknown source'}, "
        f"{definition.created_at:%Y-%m-%d %H:%M:%S} UTC\n"
        + dump_yaml(definition.spec.model_dump(mode="json", exclude_none=True))
    )


@app.command()
def history(
    name: Annotated[str, _name_argument("The agent.")],
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List every version of an agent."""
    chosen = chosen_format(json_flag, output_format)
    versions: list[AgentDefinition] = run_async(
        _with_store(database_url, lambda store: store.versions(name))
    )
    print_rows(
        versions,
        [
            Column("version", lambda d: str(d.version), typed=True),
            Column("created (UTC)", lambda d: f"{d.created_at:%Y-%m-%d %H:%M:%S}"),
            Column("source", lambda d: d.source or ""),
            Column("by", lambda d: d.created_by or ""),
            Column("type", lambda d: d.spec.type),
            Column("hash", lambda d: d.content_hash[:12]),
        ],
        title=f"versions of {name}",
        output_format=chosen,
        wide=wide,
        document=[_definition_document(definition) for definition in versions],
    )


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
        write_data(text)
    else:
        output.write_text(text, encoding="utf-8")
        error_console.print(f"Wrote {len(definitions)} definition(s) to {output}")

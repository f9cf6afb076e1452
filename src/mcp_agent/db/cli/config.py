"""`fast-agent-db config ...`: the settings that fastagent.config.yaml holds upstream."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

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
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, error_console, fail, run_async
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import edits, secrets
from mcp_agent.db.settings.base import ConfigChange, DocumentEdit
from mcp_agent.db.settings.changes import HistoryPurge, displayed_change
from mcp_agent.db.settings.document import (
    ConfigDocument,
    document_from_yaml,
    document_to_display,
    document_to_yaml,
    secret_locations,
    suggested_variable,
)
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.settings.yaml_files import dump_yaml, parse_yaml, read_yaml_file
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="Settings in the database: import, export, show, set, history.")

EncryptOption = Annotated[
    bool,
    typer.Option(
        "--encrypt-secrets",
        help=f"Store literal secrets encrypted with the key in {secrets.SECRET_KEY_ENV} "
        "(without it, literal secrets are refused; use env:NAME references).",
    ),
]


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except OSError:
        return None


async def update_settings(raw_url: str, edit: DocumentEdit) -> list[ConfigChange]:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlSettingsStore(runtime).update(edit, changed_by=current_user())


async def load_settings(raw_url: str) -> ConfigDocument:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlSettingsStore(runtime).load_document()


def print_changes(changes: list[ConfigChange]) -> None:
    if not changes:
        console.print("No changes.")
        return
    for change in changes:
        console.print(f"  {change.operation:<7} {change.key}")
    console.print(f"{len(changes)} change(s) recorded.")


@app.command("import")
def import_(
    config_file: Annotated[Path, typer.Argument(help="A fastagent.config.yaml file.")],
    secrets_file: Annotated[
        Path | None,
        typer.Option(
            "--secrets",
            help="A fastagent.secrets.yaml file, merged over the config as upstream does. "
            "Default: fastagent.secrets.yaml beside the config file, if present.",
        ),
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge into the stored settings instead of replacing.")
    ] = False,
    encrypt_secrets: EncryptOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Import upstream YAML settings in one transaction: all of it, or nothing on any error."""
    if secrets_file is None:
        beside = config_file.parent / "fastagent.secrets.yaml"
        if beside.is_file():
            secrets_file = beside
            error_console.print(f"Using secrets file {beside}")
    imported = document_from_yaml(
        read_yaml_file(config_file),
        read_yaml_file(secrets_file) if secrets_file else None,
        config_name=str(config_file),
        secrets_name=str(secrets_file) if secrets_file else "fastagent.secrets.yaml",
        encrypt_literals=encrypt_secrets,
    )

    def replace(current: ConfigDocument) -> ConfigDocument:
        if not merge:
            return imported
        current.settings.update(imported.settings)
        current.providers.update(imported.providers)
        current.servers.update(imported.servers)
        return current

    print_changes(run_async(update_settings(resolve_database_url(database_url), replace)))


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export the settings as a fastagent.config.yaml that upstream fast-agent loads.

    Secrets are written as ${NAME} placeholders, which upstream resolves from the environment.
    """
    document = run_async(load_settings(resolve_database_url(database_url)))
    text = dump_yaml(document_to_yaml(document))
    for path, value in secret_locations(document):
        key, placeholder = ".".join(path), "${" + suggested_variable(path) + "}"
        if value.startswith(secrets.ENCRYPTED_PREFIX):
            _note(f"{key} is stored encrypted; exported as {placeholder}.")
        elif not secrets.is_reference(value):
            _note(
                f"{key} holds a plaintext secret stored before the secret rules; exported as "
                f"{placeholder} (store it again as a reference, or with --encrypt-secrets)."
            )
    if output is None:
        write_data(text)
    else:
        output.write_text(text, encoding="utf-8")
        error_console.print(f"Wrote {output}")


def _note(text: str) -> None:
    error_console.print("[yellow]Note:[/] " + escape(text), highlight=False, soft_wrap=True)


@app.command()
def show(
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the stored settings as YAML (or --json): references as they are, encrypted
    secrets masked."""
    chosen = chosen_format(json_flag, output_format)
    document = run_async(load_settings(resolve_database_url(database_url)))
    displayed = document_to_display(document)
    if chosen is OutputFormat.JSON:
        print_document(displayed, chosen)
    else:
        write_data(dump_yaml(displayed) or "{}")


def _parse_value(text: str) -> Any:
    """A YAML scalar or flow collection, so `true`, `3`, `[a, b]` keep their types."""
    return parse_yaml(f"value: {text}", source="VALUE")["value"]


@app.command("set")
def set_(
    key: Annotated[
        str,
        typer.Argument(
            help="Dotted key, e.g. default_model, logger.level, "
            "anthropic.api_key, mcp.servers.NAME.args."
        ),
    ],
    value: Annotated[str, typer.Argument(help="The value, read as YAML (true, 3, \\[a, b]).")],
    encrypt_secrets: EncryptOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Set one setting."""
    parsed = _parse_value(value)
    changes = run_async(
        update_settings(
            resolve_database_url(database_url),
            lambda document: edits.set_value(
                document, key, parsed, encrypt_literals=encrypt_secrets
            ),
        )
    )
    print_changes(changes)


@app.command()
def unset(
    key: Annotated[str, typer.Argument(help="Dotted key, a provider, or mcp.servers.NAME.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove one setting (or a whole provider section or server)."""
    changes = run_async(
        update_settings(
            resolve_database_url(database_url), lambda document: edits.unset_value(document, key)
        )
    )
    print_changes(changes)


async def _history(raw_url: str, key: str | None, limit: int) -> list[ConfigChange]:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlSettingsStore(runtime).history(key, limit=limit)


@app.command()
def history(
    key: Annotated[str | None, typer.Argument(help="Only this key and its children.")] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many changes.", min=1, max=INTEGER_MAX)
    ] = 100,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show recorded changes to the settings, newest first."""
    chosen = chosen_format(json_flag, output_format)
    changes = run_async(_history(resolve_database_url(database_url), key, limit))
    documents = [displayed_change(change) for change in changes]
    print_rows(
        documents,
        [
            Column("when (UTC)", lambda change: change["changed_at"].strftime("%Y-%m-%d %H:%M:%S")),
            Column("key", lambda change: change["key"], typed=True),
            Column("change", lambda change: change["operation"]),
            Column("old", lambda change: _compact(change["old_value"])),
            Column("new", lambda change: _compact(change["new_value"])),
            Column("by", lambda change: change["changed_by"] or ""),
        ],
        title="configuration changes",
        output_format=chosen,
        wide=wide,
    )


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


async def _purge_history(raw_url: str, key: str | None, *, apply: bool) -> HistoryPurge:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlSettingsStore(runtime).purge_history(key, apply=apply)


@app.command("purge-history")
def purge_history(
    key: Annotated[
        str | None,
        typer.Argument(
            help="A key as `config history` shows it (mcp.servers.NAME.env.VAR, "
            "openai.api_key, logger.http_headers): every value recorded for it is removed."
        ),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Instead of one key: mask every value that looks secret."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove secret values already recorded in the configuration history.

    The rows stay (when, key, change, who); their values become <purged> (KEY) or are masked
    (--all).
    """
    if (key is None and not everything) or (key is not None and everything):
        fail("give a KEY (as `config history` shows it) or --all, not both", code=EXIT_BAD_INPUT)
    raw_url = resolve_database_url(database_url)
    what = "every value that looks secret" if key is None else f"the values recorded for {key}"
    found = run_async(_purge_history(raw_url, key, apply=False))
    if key is not None and found.matched == 0:
        fail(f"{key}: no recorded changes (see `config history`)", code=EXIT_BAD_INPUT)
    if found.purged == 0:
        console.print(
            f"Nothing to purge: {what} is already gone from {found.matched} row(s).",
            soft_wrap=True,
        )
        return
    if not yes:
        if not sys.stdin.isatty():
            fail(
                f"purging {what} from {found.purged} history row(s) needs confirmation: pass --yes",
                code=EXIT_BAD_INPUT,
            )
        typer.confirm(
            f"Remove {what} from {found.purged} history row(s)?", default=False, abort=True
        )
    purged = run_async(_purge_history(raw_url, key, apply=True))
    console.print(
        f"Purged {what} from {purged.purged} history row(s); "
        "the rows keep when, key, change and who.",
        soft_wrap=True,
    )


@app.command()
def keygen() -> None:
    """Print a new key for FAST_AGENT_DB_SECRET_KEY (for --encrypt-secrets)."""
    console.print(secrets.generate_key(), markup=False, highlight=False)

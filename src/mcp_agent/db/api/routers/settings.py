"""/v1/settings: the whole settings document, one dotted key, and the change history - what
`fast-agent-db config show|import|set|unset|history` do, through the same settings store.

Documents are upstream's fastagent.config.yaml shape, as `config show` prints it: secrets as
their references (`env:NAME`, `tpl:Bearer ${TOKEN}`), encrypted ones as `<encrypted>`. A
document read here can be written back unchanged: `<encrypted>` where an encrypted value is
stored keeps that value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import SettingsStore
from mcp_agent.db.api.masked_secrets import keep_encrypted_values
from mcp_agent.db.api.pagination import Page, PageParameters, paginate
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.errors import UnknownValueError
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.base import ConfigChange
from mcp_agent.db.settings.changes import displayed_change
from mcp_agent.db.settings.document import (
    ConfigDocument,
    document_from_yaml,
    document_to_display,
)

router = APIRouter(prefix="/settings", tags=["settings"])

#: A dotted key as `config set` takes it: default_model, logger.level, anthropic.api_key,
#: mcp.servers.NAME.args.
SettingKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=500,
        description="Dotted key: default_model, logger.level, anthropic.api_key, "
        "mcp.servers.NAME.env.",
    ),
]
EncryptSecrets = Annotated[
    bool,
    Query(
        description="Store literal secrets encrypted (needs FAST_AGENT_DB_SECRET_KEY on the "
        "server); without it a literal secret is refused: give a reference (env:NAME)."
    ),
]


class SettingChange(BaseModel):
    """One recorded change, as `config history --json` shows it (secrets masked)."""

    changed_at: datetime
    key: str
    operation: str
    old_value: Any = None
    new_value: Any = None
    changed_by: str | None = None


class SettingsWrite(BaseModel):
    """What a write changed (empty: the settings already were so)."""

    changes: list[SettingChange]


class SettingValue(BaseModel):
    key: str
    value: Any


class SettingAssignment(BaseModel):
    """The value for one key, as JSON (`true`, `3`, `["a", "b"]`, `"env:TOKEN"`)."""

    value: Any


def settings_write(changes: list[ConfigChange]) -> SettingsWrite:
    return SettingsWrite(changes=[SettingChange(**displayed_change(c)) for c in changes])


def value_at(document: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key in a nested document; a name that holds dots itself (a
    server called `a.b`) is matched whole, longest first.

    Raises:
        UnknownValueError: the key is not set.
    """

    def find(node: Any, parts: list[str]) -> tuple[bool, Any]:
        if not parts:
            return True, node
        if not isinstance(node, Mapping):
            return False, None
        for length in range(len(parts), 0, -1):
            name = ".".join(parts[:length])
            if name in node:
                found, value = find(node[name], parts[length:])
                if found:
                    return True, value
        return False, None

    found, value = find(document, key.split("."))
    if not found:
        raise UnknownValueError(f"{key}: not set (see GET /v1/settings)")
    return value


@router.get("", summary="The whole settings document", response_model=dict[str, Any])
async def get_settings(store: SettingsStore) -> dict[str, Any]:
    return document_to_display(await store.load_document())


@router.put(
    "",
    summary="Replace (or merge into) the whole settings document",
    response_model=SettingsWrite,
)
async def put_settings(
    store: SettingsStore,
    caller: Caller,
    document: Annotated[
        dict[str, Any],
        Body(description="Upstream's fastagent.config.yaml shape, secrets as references."),
    ],
    encrypt_secrets: EncryptSecrets = False,
    merge: Annotated[
        bool,
        Query(description="Merge sections into the stored settings instead of replacing them."),
    ] = False,
) -> SettingsWrite:
    def replace(current: ConfigDocument) -> ConfigDocument:
        imported = document_from_yaml(
            keep_encrypted_values(document, current),
            config_name="body",
            encrypt_literals=encrypt_secrets,
        )
        if not merge:
            return imported
        current.settings.update(imported.settings)
        current.providers.update(imported.providers)
        current.servers.update(imported.servers)
        return current

    return settings_write(await store.update(replace, changed_by=caller.audit_name))


@router.get(
    "/history",
    summary="Recorded changes, newest first",
    response_model=Page[SettingChange],
)
async def settings_history(
    store: SettingsStore,
    page: PageParameters,
    key: Annotated[
        str | None,
        Query(max_length=500, description="Only this dotted key and its children."),
    ] = None,
) -> Page[SettingChange]:
    changes = await store.history(key, limit=INTEGER_MAX)
    found = paginate(
        changes,
        page,
        list_name="settings-history",
        key=lambda change: (change.changed_at.isoformat(), change.change_id or 0),
        descending=True,
    )
    return Page(
        items=[SettingChange(**displayed_change(change)) for change in found.items],
        next_cursor=found.next_cursor,
    )


@router.get(
    "/keys/{key}",
    summary="One setting by dotted key",
    response_model=SettingValue,
    responses=problem_responses(404),
)
async def get_setting(store: SettingsStore, key: SettingKey) -> SettingValue:
    displayed = document_to_display(await store.load_document())
    return SettingValue(key=key, value=value_at(displayed, key))


@router.put(
    "/keys/{key}",
    summary="Set one setting by dotted key (as `config set`)",
    response_model=SettingsWrite,
)
async def set_setting(
    store: SettingsStore,
    caller: Caller,
    key: SettingKey,
    assignment: SettingAssignment,
    encrypt_secrets: EncryptSecrets = False,
) -> SettingsWrite:
    changes = await store.update(
        lambda document: edits.set_value(
            document, key, assignment.value, encrypt_literals=encrypt_secrets
        ),
        changed_by=caller.audit_name,
    )
    return settings_write(changes)


@router.delete(
    "/keys/{key}",
    summary="Remove one setting, a provider section or a server (as `config unset`)",
    response_model=SettingsWrite,
    responses=problem_responses(404),
)
async def unset_setting(store: SettingsStore, caller: Caller, key: SettingKey) -> SettingsWrite:
    displayed = document_to_display(await store.load_document())
    value_at(displayed, key)  # 404 for a key that is not set, before anything is written
    changes = await store.update(
        lambda document: edits.unset_value(document, key), changed_by=caller.audit_name
    )
    return settings_write(changes)

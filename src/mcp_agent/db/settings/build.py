"""Turning a configuration document into the `Settings` a run uses.

Precedence when a database is configured: values in the database, then environment
variables (upstream's pydantic-settings names such as ANTHROPIC__API_KEY or
DEFAULT_MODEL, and `.env`) for what the database does not set. fastagent.config.yaml and
fastagent.secrets.yaml are not read for settings. Without a database, upstream's own order
applies unchanged (files, then environment).
"""

from __future__ import annotations

import os
import re
from typing import Any

from mcp_agent.config import Settings

from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.document import (
    DATABASE_SECTION,
    PROVIDER_SECTIONS,
    ConfigDocument,
    settings_kwargs,
)
from mcp_agent.db.settings.secrets import SecretError
from mcp_agent.db.urls import redact_url

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
#: Resolved where upstream uses them (patches/secret_resolution): provider API keys on each
#: request, and these server fields when the server starts. Every other secret is resolved
#: when the run's settings are built.
RESOLVED_AT_USE_SERVER_FIELDS = frozenset(
    {"command", "args", "cwd", "url", "headers", "env", "auth"}
)


def _expand(value: Any, path: tuple[str, ...] = ()) -> Any:
    """Upstream's `${NAME}` / `${NAME:default}` expansion for non-secret values.

    Raises:
        SecretError: a placeholder names a denied variable (see secrets.DENIED_VARIABLES).
    """
    if isinstance(value, dict):
        return {key: _expand(entry, (*path, str(key))) for key, entry in value.items()}
    if isinstance(value, list):
        return [_expand(entry, (*path, str(index))) for index, entry in enumerate(value)]
    if isinstance(value, str) and not secrets.is_reference(value):

        def replace(match: re.Match[str]) -> str:
            name, has_default, default = match.group(1).partition(":")
            secrets.check_variable_allowed(name, field=".".join(path))
            found = os.environ.get(name)
            if found is not None:
                return found
            return default if has_default else match.group(0)

        return _PLACEHOLDER.sub(replace, value)
    return value


def _resolved(value: Any, path: tuple[str, ...]) -> Any:
    """`value` with every reference in it resolved now (and remembered, for scrubbing).

    Raises:
        SecretError: naming the field and the variable that is not set (or the missing key).
    """
    if isinstance(value, dict):
        return {key: _resolved(entry, (*path, str(key))) for key, entry in value.items()}
    if isinstance(value, list):
        return [_resolved(entry, (*path, str(index))) for index, entry in enumerate(value)]
    if secrets.is_reference(value):
        return secrets.resolve(value, field=".".join(path))
    return value


def _resolve_secrets_not_resolved_at_use(kwargs: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for section, value in kwargs.items():
        if section == "mcp" and isinstance(value, dict):
            servers = value.get("servers") or {}
            resolved[section] = {
                **_resolved(
                    {key: entry for key, entry in value.items() if key != "servers"}, ("mcp",)
                ),
                "servers": {
                    name: {
                        field: entry
                        if field in RESOLVED_AT_USE_SERVER_FIELDS
                        else _resolved(entry, ("mcp", "servers", name, field))
                        for field, entry in server.items()
                    }
                    for name, server in servers.items()
                },
            }
        elif section in PROVIDER_SECTIONS and isinstance(value, dict):
            resolved[section] = {
                key: entry if key == "api_key" else _resolved(entry, (section, key))
                for key, entry in value.items()
            }
        else:
            resolved[section] = _resolved(value, (section,))
    return resolved


def build_settings(document: ConfigDocument, *, database_url: str) -> Settings:
    """The run's Settings: provider keys and server secrets stay references until used; other
    secrets (a provider's base_url or options, logger headers, ...) are resolved here.

    Raises:
        SecretError: a secret resolved here refers to a variable that is not set, or a denied one.
    """
    kwargs = _resolve_secrets_not_resolved_at_use(_expand(settings_kwargs(document)))
    azure = kwargs.get("azure")
    if isinstance(azure, dict) and secrets.is_reference(azure.get("api_key")):
        # Upstream's Azure provider reads the key from the config object directly rather than
        # through ProviderKeyManager, so it is resolved here; unresolvable means unset.
        try:
            azure["api_key"] = secrets.resolve(azure["api_key"], field="azure.api_key")
        except SecretError:
            azure["api_key"] = None
    database = dict(kwargs.get(DATABASE_SECTION) or {})
    database["url"] = redact_url(database_url)
    kwargs[DATABASE_SECTION] = database
    return Settings(**kwargs)

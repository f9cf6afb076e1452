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
from mcp_agent.db.settings.document import DATABASE_SECTION, ConfigDocument, settings_kwargs
from mcp_agent.db.settings.secrets import SecretError
from mcp_agent.db.urls import redact_url

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def _expand(value: Any) -> Any:
    """Upstream's `${NAME}` / `${NAME:default}` expansion for non-secret values."""
    if isinstance(value, dict):
        return {key: _expand(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_expand(entry) for entry in value]
    if isinstance(value, str) and not secrets.is_reference(value):

        def replace(match: re.Match[str]) -> str:
            name, has_default, default = match.group(1).partition(":")
            found = os.environ.get(name)
            if found is not None:
                return found
            return default if has_default else match.group(0)

        return _PLACEHOLDER.sub(replace, value)
    return value


def build_settings(document: ConfigDocument, *, database_url: str) -> Settings:
    """The run's Settings: provider and server secrets stay references until used."""
    kwargs = _expand(settings_kwargs(document))
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

"""Edits of a configuration document by dotted key: what `config set/unset` and
`servers add/remove` do. Pure functions over `ConfigDocument`, so every store shares them."""

from __future__ import annotations

from typing import Any

from mcp_agent.db.settings.document import (
    DATABASE_SECTION,
    NESTED_SETTING_SECTIONS,
    PROVIDER_SECTIONS,
    SERVER_FIELDS,
    TOP_LEVEL_SETTINGS,
    ConfigDocument,
    ConfigError,
    ProblemList,
    ProviderConfig,
    SecretConversion,
    ServerConfig,
    provider_from_yaml,
    server_from_yaml,
)

_SERVERS_PREFIX = "mcp.servers."


def _bad_key(key: str, reason: str) -> ConfigError:
    return ConfigError([f"{key}: {reason}"])


def _stored(value: Any, key: str, *, secret_field: bool = False, encrypt_literals: bool) -> Any:
    """`value` for the dotted `key`, its secrets in stored form.

    Raises:
        ConfigError: naming each secret that cannot be stored (a literal, a denied variable).
    """
    problems = ProblemList(lambda _path: "setting")
    path = tuple(key.split("."))
    stored = SecretConversion(problems, encrypt_literals=encrypt_literals).convert(
        value, path, name=path[-1], secret_field=secret_field
    )
    if problems.items:
        raise ConfigError(problems.items)
    return stored


def set_value(
    document: ConfigDocument, key: str, value: Any, *, encrypt_literals: bool = False
) -> ConfigDocument:
    """Set one dotted key (`default_model`, `logger.level`, `anthropic.api_key`,
    `mcp.servers.NAME.FIELD`, ...).

    Raises:
        ConfigError: the key names nothing upstream knows, or the value is invalid.
    """
    head, _, rest = key.partition(".")
    if key.startswith(_SERVERS_PREFIX):
        name, _, field = key[len(_SERVERS_PREFIX) :].partition(".")
        if name not in document.servers:
            raise _bad_key(key, f"no MCP server named {name!r}")
        if field not in SERVER_FIELDS:
            raise _bad_key(key, f"unknown server field (known: {', '.join(SERVER_FIELDS)})")
        fields = document.servers[name].set_fields()
        fields[field] = value
        document.servers[name] = parse_server(name, fields, encrypt_literals=encrypt_literals)
    elif head in PROVIDER_SECTIONS:
        if not rest:
            raise _bad_key(key, "name a field of the provider, e.g. base_url or api_key")
        provider = document.providers.get(head) or ProviderConfig()
        if rest == "api_key":
            provider.api_key_ref = _stored(
                str(value), key, secret_field=True, encrypt_literals=encrypt_literals
            )
        elif rest == "base_url":
            provider.base_url = _stored(
                None if value is None else str(value), key, encrypt_literals=encrypt_literals
            )
        else:
            provider.options[rest] = _stored(value, key, encrypt_literals=encrypt_literals)
        document.providers[head] = provider
    elif head in NESTED_SETTING_SECTIONS:
        if rest not in NESTED_SETTING_SECTIONS[head].model_fields:
            known = ", ".join(NESTED_SETTING_SECTIONS[head].model_fields)
            raise _bad_key(key, f"unknown field (known: {known})")
        document.settings[key] = _stored(value, key, encrypt_literals=encrypt_literals)
    elif head in ("mcp", DATABASE_SECTION) and rest:
        if key == f"{DATABASE_SECTION}.url":
            raise _bad_key(key, "the database URL is not stored inside the database")
        document.settings[key] = _stored(value, key, encrypt_literals=encrypt_literals)
    elif key in TOP_LEVEL_SETTINGS:
        document.settings[key] = _stored(value, key, encrypt_literals=encrypt_literals)
    else:
        raise _bad_key(key, "unknown setting")
    return document


def unset_value(document: ConfigDocument, key: str) -> ConfigDocument:
    """Remove one dotted key, a whole provider section, or a whole server."""
    head, _, rest = key.partition(".")
    if key.startswith(_SERVERS_PREFIX):
        name, _, field = key[len(_SERVERS_PREFIX) :].partition(".")
        if name not in document.servers:
            raise _bad_key(key, f"no MCP server named {name!r}")
        if not field:
            del document.servers[name]
            return document
        fields = document.servers[name].set_fields()
        if field not in fields:
            raise _bad_key(key, "is not set")
        del fields[field]
        document.servers[name] = parse_server(name, fields)
    elif head in document.providers:
        provider = document.providers[head]
        if not rest:
            del document.providers[head]
        elif rest == "api_key" and provider.api_key_ref is not None:
            provider.api_key_ref = None
        elif rest == "base_url" and provider.base_url is not None:
            provider.base_url = None
        elif rest in provider.options:
            del provider.options[rest]
        else:
            raise _bad_key(key, "is not set")
    elif key in document.settings:
        del document.settings[key]
    else:
        children = [name for name in document.settings if name.startswith(key + ".")]
        if not children:
            raise _bad_key(key, "is not set")
        for name in children:
            del document.settings[name]
    return document


def parse_server(
    name: str, fields: dict[str, Any], *, encrypt_literals: bool = False
) -> ServerConfig:
    """Validate one server's fields as upstream's MCPServerSettings would, secrets as refs."""
    problems = ProblemList(lambda _path: "server")
    conversion = SecretConversion(problems, encrypt_literals=encrypt_literals)
    parsed = server_from_yaml(name, fields, conversion)
    if problems.items or parsed is None:
        raise ConfigError(problems.items or [f"mcp.servers.{name}: invalid"])
    return parsed


def add_server(
    document: ConfigDocument,
    name: str,
    fields: dict[str, Any],
    *,
    replace: bool = False,
    encrypt_literals: bool = False,
) -> ConfigDocument:
    if name in document.servers and not replace:
        raise _bad_key(f"mcp.servers.{name}", "a server with this name exists (use --replace)")
    document.servers[name] = parse_server(name, fields, encrypt_literals=encrypt_literals)
    return document


def remove_server(document: ConfigDocument, name: str) -> ConfigDocument:
    if name not in document.servers:
        raise _bad_key(f"mcp.servers.{name}", "no MCP server with this name")
    del document.servers[name]
    return document


def set_provider(
    document: ConfigDocument,
    name: str,
    section: dict[str, Any],
    *,
    encrypt_literals: bool = False,
) -> ConfigDocument:
    """Make `section` (upstream's YAML shape: base_url, api_key, other fields) the whole
    section of provider `name`, validated by upstream's model, secrets as references.

    Raises:
        ConfigError: an unknown provider, or naming each invalid field.
    """
    if name not in PROVIDER_SECTIONS:
        raise _bad_key(name, f"unknown provider (known: {', '.join(sorted(PROVIDER_SECTIONS))})")
    problems = ProblemList(lambda _path: "provider")
    conversion = SecretConversion(problems, encrypt_literals=encrypt_literals)
    provider = provider_from_yaml(name, section, conversion)
    if problems.items or provider is None:
        raise ConfigError(problems.items or [f"{name}: invalid"])
    document.providers[name] = provider
    return document

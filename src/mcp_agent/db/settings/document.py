"""The configuration document: what fastagent.config.yaml and fastagent.secrets.yaml say.

`ConfigDocument` is the domain object of the settings seam. It is built from YAML (import),
from rows (the SQL store), and turned back into YAML (export) or into the keyword arguments of
upstream's `Settings` (a run). Secret values inside it are always references (`env:NAME`,
`enc:v1:...`), never plaintext.

Layout, mirroring upstream's `Settings`:
* `providers`: one entry per provider section (anthropic, openai, generic, azure, ...);
* `servers`: `mcp.servers`, one entry per MCP server;
* `settings`: everything else by dotted key (`default_model`, `logger.level`, `otel.enabled`,
  `mcp.<extra>`, `database.<key>`).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from mcp_agent.config import LoggerSettings, MCPServerSettings, OpenTelemetrySettings, Settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.secrets import SecretError

#: Sections of `Settings` that are flattened into dotted settings keys.
NESTED_SETTING_SECTIONS: dict[str, type[BaseModel]] = {
    "logger": LoggerSettings,
    "otel": OpenTelemetrySettings,
}
#: The fork's own top-level section (database options other than the URL).
DATABASE_SECTION = "database"
#: Server fields holding secrets in every key (upstream's MCPServerAuthSettings).
_SERVER_SECRET_MAPPINGS = ("env", "headers")
_ANGLE_PLACEHOLDER = re.compile(r"^<[^<>]*>$")


def _provider_section_models() -> dict[str, type[BaseModel]]:
    """Provider sections, read from upstream's Settings so a new provider is picked up."""
    sections: dict[str, type[BaseModel]] = {}
    for name, field in Settings.model_fields.items():
        if name in ("mcp", *NESTED_SETTING_SECTIONS):
            continue
        for candidate in typing.get_args(field.annotation) or (field.annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                sections[name] = candidate
    return sections


PROVIDER_SECTIONS = _provider_section_models()
TOP_LEVEL_SETTINGS = tuple(
    name
    for name in Settings.model_fields
    if name not in PROVIDER_SECTIONS and name not in ("mcp", *NESTED_SETTING_SECTIONS)
)
SERVER_FIELDS = tuple(name for name in MCPServerSettings.model_fields if name != "name")


class ConfigError(FastAgentDbError):
    """Invalid configuration input; `problems` lists each one with its file and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    #: A secret reference (`env:NAME` / `enc:v1:...`), never a plaintext key.
    api_key_ref: str | None = None
    #: The section's other fields (cache_mode, reasoning_effort, resource_name, ...).
    options: dict[str, Any] = Field(default_factory=dict)


class ServerConfig(BaseModel):
    """One MCP server, every `MCPServerSettings` field; secret values as references."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    transport: str = "stdio"
    command: str | None = None
    args: list[str] | None = None
    cwd: str | None = None
    url: str | None = None
    read_timeout_seconds: int | None = None
    read_transport_sse_timeout_seconds: int | None = None
    headers: dict[str, str] | None = None
    env: dict[str, str] | None = None
    auth: dict[str, Any] | None = None
    roots: list[dict[str, Any]] | None = None
    sampling: dict[str, Any] | None = None

    def set_fields(self) -> dict[str, Any]:
        """The fields given explicitly (so export reproduces the input, not the defaults)."""
        return self.model_dump(exclude_unset=True)


class ConfigDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# YAML (upstream's shape) -> document


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's merge of the secrets file over the config file: nested dicts merge."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ProblemList:
    """Collects every problem of an input, each attributed to the file that set the key."""

    def __init__(self, origin: Callable[[tuple[str, ...]], str]) -> None:
        self.items: list[str] = []
        self._origin = origin

    def add(self, path: tuple[str, ...], message: str) -> None:
        where = ".".join(path) if path else "(top level)"
        self.items.append(f"{self._origin(path)}: {where}: {message}")

    def add_validation(self, path: tuple[str, ...], error: ValidationError) -> None:
        for detail in error.errors():
            location = tuple(str(part) for part in detail["loc"])
            self.add((*path, *location), detail["msg"])


def _secret(
    value: Any, path: tuple[str, ...], problems: ProblemList, *, encrypt_literals: bool
) -> str | None:
    if value is None or value == secrets.API_KEY_HINT_TEXT:
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a string, got {type(value).__name__}")
        return None
    try:
        return secrets.as_reference(value, field=".".join(path), encrypt_literals=encrypt_literals)
    except SecretError as error:
        problems.add(path, error.reason)
        return None


def _is_secret_entry(name: str, value: str, from_secrets_file: bool) -> bool:
    if _ANGLE_PLACEHOLDER.match(value):
        return False  # "<your_brave_api_key>": a hint for the user, not a secret
    return from_secrets_file or secrets.is_reference(value) or secrets.is_secret_name(name)


def document_from_yaml(
    config: Mapping[str, Any],
    secrets_yaml: Mapping[str, Any] | None = None,
    *,
    config_name: str = "fastagent.config.yaml",
    secrets_name: str = "fastagent.secrets.yaml",
    encrypt_literals: bool = False,
) -> ConfigDocument:
    """Build a document from the two upstream files, validating everything.

    Raises:
        ConfigError: listing every problem with its file and dotted field.
    """
    secrets_yaml = secrets_yaml or {}

    def in_secrets(path: tuple[str, ...]) -> bool:
        node: Any = secrets_yaml
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                return False
            node = node[part]
        return True

    problems = ProblemList(lambda path: secrets_name if in_secrets(path) else config_name)
    merged = deep_merge(config, secrets_yaml)
    document = ConfigDocument()

    for key, value in merged.items():
        path = (str(key),)
        if key in PROVIDER_SECTIONS:
            provider = _provider_from_yaml(
                str(key), value, problems, encrypt_literals=encrypt_literals
            )
            if provider is not None:
                document.providers[str(key)] = provider
        elif key == "mcp":
            _mcp_from_yaml(value, document, problems, in_secrets, encrypt_literals)
        elif key in NESTED_SETTING_SECTIONS or key == DATABASE_SECTION:
            _section_from_yaml(str(key), value, document, problems)
        elif key in TOP_LEVEL_SETTINGS:
            document.settings[str(key)] = value
        else:
            known = ", ".join(sorted([*PROVIDER_SECTIONS, *TOP_LEVEL_SETTINGS, "mcp", "logger"]))
            problems.add(path, f"unknown section or provider (known: {known}, otel, database)")

    if problems.items:
        raise ConfigError(problems.items)
    validate_document(document, source=config_name)
    return document


def validate_document(document: ConfigDocument, *, source: str = "configuration") -> None:
    """Check the whole document the way upstream will read it.

    Raises:
        ConfigError: naming each invalid field.
    """
    problems = ProblemList(lambda _path: source)
    try:
        Settings(**settings_kwargs(document))
    except ValidationError as error:
        problems.add_validation((), error)
    model_references = [(("default_model",), document.settings.get("default_model"))]
    model_references += [
        (("mcp", "servers", name, "sampling", "model"), (server.sampling or {}).get("model"))
        for name, server in document.servers.items()
    ]
    for path, model in model_references:
        if isinstance(model, str) and "${" not in model and not is_known_model(model):
            problems.add(
                path, f"unknown model {model!r} (not a model or provider fast-agent knows)"
            )
    if problems.items:
        raise ConfigError(problems.items)


def is_known_model(model: str) -> bool:
    """Whether upstream's model factory can resolve the model string."""
    from mcp_agent.core.exceptions import ModelConfigError
    from mcp_agent.llm.model_factory import ModelFactory

    try:
        ModelFactory.parse_model_string(model)
    except ModelConfigError:
        return False
    return True


def _provider_from_yaml(
    name: str, value: Any, problems: ProblemList, *, encrypt_literals: bool
) -> ProviderConfig | None:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        problems.add((name,), f"must be a mapping, got {type(value).__name__}")
        return None
    options = {k: v for k, v in value.items() if k not in ("base_url", "api_key")}
    try:
        # Validate the non-secret fields with upstream's own model.
        PROVIDER_SECTIONS[name](**options, base_url=value.get("base_url"))
    except ValidationError as error:
        problems.add_validation((name,), error)
    return ProviderConfig(
        base_url=value.get("base_url"),
        api_key_ref=_secret(
            value.get("api_key"), (name, "api_key"), problems, encrypt_literals=encrypt_literals
        ),
        options=dict(options),
    )


def _mcp_from_yaml(
    value: Any,
    document: ConfigDocument,
    problems: ProblemList,
    in_secrets: Callable[[tuple[str, ...]], bool],
    encrypt_literals: bool,
) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.add(("mcp",), f"must be a mapping, got {type(value).__name__}")
        return
    for key, extra in value.items():
        if key != "servers":
            document.settings[f"mcp.{key}"] = extra
    servers = value.get("servers") or {}
    if not isinstance(servers, Mapping):
        problems.add(("mcp", "servers"), "must be a mapping of server names to settings")
        return
    for name, server in servers.items():
        parsed = server_from_yaml(
            str(name),
            server,
            problems,
            in_secrets=lambda path, name=name: in_secrets(("mcp", "servers", str(name), *path)),
            encrypt_literals=encrypt_literals,
        )
        if parsed is not None:
            document.servers[str(name)] = parsed


def server_from_yaml(
    name: str,
    server: Any,
    problems: ProblemList,
    *,
    in_secrets: Callable[[tuple[str, ...]], bool] = lambda _path: False,
    encrypt_literals: bool = False,
) -> ServerConfig | None:
    path = ("mcp", "servers", name)
    if not isinstance(server, Mapping):
        problems.add(path, f"must be a mapping, got {type(server).__name__}")
        return None
    unknown = sorted(set(server) - set(SERVER_FIELDS) - {"name"})
    for key in unknown:
        problems.add((*path, str(key)), f"unknown server field (known: {', '.join(SERVER_FIELDS)})")
    fields = {key: value for key, value in server.items() if key in SERVER_FIELDS}
    # Always explicit, so a stored server exports the same whether or not the input said it.
    fields.setdefault("transport", "stdio")
    try:
        MCPServerSettings(**fields)
    except ValidationError as error:
        problems.add_validation(path, error)
        return None
    problems_before = len(problems.items)
    for mapping_name in _SERVER_SECRET_MAPPINGS:
        mapping = fields.get(mapping_name)
        if not mapping:
            continue
        fields[mapping_name] = {
            str(key): (
                _secret(
                    entry,
                    (*path, mapping_name, str(key)),
                    problems,
                    encrypt_literals=encrypt_literals,
                )
                if isinstance(entry, str)
                and _is_secret_entry(str(key), entry, in_secrets((mapping_name, str(key))))
                else entry
            )
            for key, entry in mapping.items()
        }
    auth = fields.get("auth")
    if auth:
        fields["auth"] = {
            str(key): (
                _secret(
                    entry, (*path, "auth", str(key)), problems, encrypt_literals=encrypt_literals
                )
                if isinstance(entry, str) and not _ANGLE_PLACEHOLDER.match(entry)
                else entry
            )
            for key, entry in auth.items()
        }
    if len(problems.items) > problems_before:
        return None
    return ServerConfig(**fields)


def _section_from_yaml(
    section: str, value: Any, document: ConfigDocument, problems: ProblemList
) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.add((section,), f"must be a mapping, got {type(value).__name__}")
        return
    model = NESTED_SETTING_SECTIONS.get(section)
    if model is not None:
        for key in sorted(set(value) - set(model.model_fields)):
            known = ", ".join(model.model_fields)
            problems.add((section, str(key)), f"unknown field (known: {known})")
        try:
            model(**value)
        except ValidationError as error:
            problems.add_validation((section,), error)
    for key, entry in value.items():
        if section == DATABASE_SECTION and key == "url":
            continue  # where the database is, not a setting stored inside it
        document.settings[f"{section}.{key}"] = entry


# ---------------------------------------------------------------------------------------------
# document -> YAML (export) and -> Settings keyword arguments (a run)


def _unflatten(settings: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in settings.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[head] = value
    return nested


def _render(document: ConfigDocument, secret: Callable[[str, str], str]) -> dict[str, Any]:
    """Upstream's YAML shape; `secret(reference, suggested_env)` renders each secret value."""
    result = _unflatten(document.settings)
    for name, provider in document.providers.items():
        section: dict[str, Any] = {}
        if provider.base_url is not None:
            section["base_url"] = provider.base_url
        if provider.api_key_ref is not None:
            section["api_key"] = secret(provider.api_key_ref, f"{name.upper()}_API_KEY")
        section.update(provider.options)
        result[name] = section
    if document.servers:
        servers: dict[str, Any] = {}
        for name, server in document.servers.items():
            fields = server.set_fields()
            for mapping_name in (*_SERVER_SECRET_MAPPINGS, "auth"):
                if fields.get(mapping_name):
                    fields[mapping_name] = {
                        key: secret(value, key.upper()) if secrets.is_reference(value) else value
                        for key, value in fields[mapping_name].items()
                    }
            servers[name] = fields
        result.setdefault("mcp", {})["servers"] = servers
    return result


def document_to_yaml(document: ConfigDocument) -> dict[str, Any]:
    """YAML that upstream fast-agent loads itself: secrets become `${NAME}` placeholders."""
    return _render(
        document,
        lambda reference, suggested: secrets.export_placeholder(reference, suggested_env=suggested),
    )


def document_to_display(document: ConfigDocument) -> dict[str, Any]:
    """YAML for people: references shown, encrypted values masked."""
    return _render(document, lambda reference, _suggested: secrets.mask(reference))


def settings_kwargs(document: ConfigDocument) -> dict[str, Any]:
    """Keyword arguments for upstream's `Settings`, secrets still as references.

    References are resolved when used (see `mcp_agent.db.settings.hooks`), so a variable that
    is never needed never has to be set, and resolved keys do not sit in the config object
    that upstream logs.
    """
    return _render(document, lambda reference, _suggested: reference)

"""The configuration document: what fastagent.config.yaml and fastagent.secrets.yaml say.

`ConfigDocument` is the domain object of the settings seam. It is built from YAML (import),
from rows (the SQL store), and turned back into YAML (export) or into the keyword arguments of
upstream's `Settings` (a run). Secret values inside it, wherever they sit, are always in a
stored form (`env:NAME`, `tpl:TEXT`, `enc:v1:...`; see settings/secrets.py), never plaintext.

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

from mcp_agent.db.errors import ConfigError  # noqa: F401 - defined in errors, imported from here too
from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.secrets import SecretError

#: Sections of `Settings` that are flattened into dotted settings keys.
NESTED_SETTING_SECTIONS: dict[str, type[BaseModel]] = {
    "logger": LoggerSettings,
    "otel": OpenTelemetrySettings,
}
#: The fork's own top-level section (database options other than the URL).
DATABASE_SECTION = "database"


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


class SecretConversion:
    """Puts every secret of an input in its stored form (see settings/secrets.py), recording a
    problem for each one that cannot be stored, and each reference to a denied variable."""

    def __init__(
        self,
        problems: ProblemList,
        *,
        from_secrets_file: Callable[[tuple[str, ...]], bool] = lambda _path: False,
        encrypt_literals: bool = False,
    ) -> None:
        self.problems = problems
        self._from_secrets_file = from_secrets_file
        self._encrypt_literals = encrypt_literals

    def convert(
        self, value: Any, path: tuple[str, ...], *, name: str | None, secret_field: bool = False
    ) -> Any:
        """`value` with its secrets in stored form; nested mappings name their entries, list
        items take the name of their list. `secret_field`: every string is a secret."""
        if isinstance(value, Mapping):
            return {
                key: self.convert(
                    entry, (*path, str(key)), name=str(key), secret_field=secret_field
                )
                for key, entry in value.items()
            }
        if isinstance(value, list):
            return [
                self.convert(entry, (*path, str(index)), name=name, secret_field=secret_field)
                for index, entry in enumerate(value)
            ]
        if not isinstance(value, str):
            return value
        field = ".".join(path)
        try:
            for variable in secrets.referenced_variables(value):
                secrets.check_variable_allowed(variable, field=field)
            reason = secrets.secret_reason(
                value, name=name, from_secrets_file=self._from_secrets_file(path)
            )
            if reason is None and secret_field and value.strip() and not secrets.is_hint(value):
                reason = "a secret field"
            if reason is None and not secrets.is_reference(value):
                return value
            return secrets.stored_form(
                value,
                field=field,
                reason=reason or "a reference",
                encrypt_literals=self._encrypt_literals,
            )
        except SecretError as error:
            self.problems.add(path, error.reason)
            return None


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
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False
        return True

    problems = ProblemList(lambda path: secrets_name if in_secrets(path) else config_name)
    conversion = SecretConversion(
        problems, from_secrets_file=in_secrets, encrypt_literals=encrypt_literals
    )
    merged = deep_merge(config, secrets_yaml)
    document = ConfigDocument()

    for key, value in merged.items():
        path = (str(key),)
        if key in PROVIDER_SECTIONS:
            provider = provider_from_yaml(str(key), value, conversion)
            if provider is not None:
                document.providers[str(key)] = provider
        elif key == "mcp":
            _mcp_from_yaml(value, document, conversion)
        elif key in NESTED_SETTING_SECTIONS or key == DATABASE_SECTION:
            _section_from_yaml(str(key), value, document, conversion)
        elif key in TOP_LEVEL_SETTINGS:
            document.settings[str(key)] = conversion.convert(value, path, name=str(key))
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
    kwargs = settings_kwargs(document)
    try:
        Settings(**kwargs)
    except ValidationError as error:
        problems.add_validation((), error)
    _check_denied_variables(kwargs, (), problems)
    for name, server in document.servers.items():
        for variable in server.env or {}:
            if secrets.is_denied_variable(variable):
                problems.add(
                    ("mcp", "servers", name, "env", variable),
                    "a server's environment cannot set this variable (it is on the deny list: "
                    f"{', '.join(secrets.DENIED_VARIABLES)})",
                )
    model_references = [(("default_model",), document.settings.get("default_model"))]
    model_references += [
        (("mcp", "servers", name, "sampling", "model"), (server.sampling or {}).get("model"))
        for name, server in document.servers.items()
    ]
    for path, model in model_references:
        if (
            isinstance(model, str)
            and "${" not in model
            and not secrets.is_reference(model)
            and not is_known_model(model)
        ):
            problems.add(
                path, f"unknown model {model!r} (not a model or provider fast-agent knows)"
            )
    if problems.items:
        raise ConfigError(problems.items)


def _check_denied_variables(value: Any, path: tuple[str, ...], problems: ProblemList) -> None:
    """Every string of the document, whatever it is, may not name a denied variable."""
    if isinstance(value, Mapping):
        for key, entry in value.items():
            _check_denied_variables(entry, (*path, str(key)), problems)
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            _check_denied_variables(entry, (*path, str(index)), problems)
    elif isinstance(value, str):
        for variable in secrets.referenced_variables(value):
            try:
                secrets.check_variable_allowed(variable, field=".".join(path))
            except SecretError as error:
                problems.add(path, error.reason)


def is_known_model(model: str) -> bool:
    """Whether upstream's model factory can resolve the model string."""
    from mcp_agent.core.exceptions import ModelConfigError
    from mcp_agent.llm.model_factory import ModelFactory

    try:
        ModelFactory.parse_model_string(model)
    except ModelConfigError:
        return False
    return True


def provider_from_yaml(
    name: str, value: Any, conversion: SecretConversion
) -> ProviderConfig | None:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        conversion.problems.add((name,), f"must be a mapping, got {type(value).__name__}")
        return None
    options = {k: v for k, v in value.items() if k not in ("base_url", "api_key")}
    try:
        # Validate the non-secret fields with upstream's own model.
        PROVIDER_SECTIONS[name](**options, base_url=value.get("base_url"))
    except ValidationError as error:
        conversion.problems.add_validation((name,), error)
    api_key = value.get("api_key")
    if api_key == secrets.API_KEY_HINT_TEXT:
        api_key = None
    elif api_key is not None and not isinstance(api_key, str):
        conversion.problems.add(
            (name, "api_key"), f"must be a string, got {type(api_key).__name__}"
        )
        api_key = None
    return ProviderConfig(
        base_url=conversion.convert(value.get("base_url"), (name, "base_url"), name="base_url"),
        api_key_ref=conversion.convert(
            api_key, (name, "api_key"), name="api_key", secret_field=True
        ),
        options=conversion.convert(options, (name,), name=None),
    )


def _mcp_from_yaml(value: Any, document: ConfigDocument, conversion: SecretConversion) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        conversion.problems.add(("mcp",), f"must be a mapping, got {type(value).__name__}")
        return
    for key, extra in value.items():
        if key != "servers":
            document.settings[f"mcp.{key}"] = conversion.convert(
                extra, ("mcp", str(key)), name=str(key)
            )
    servers = value.get("servers") or {}
    if not isinstance(servers, Mapping):
        conversion.problems.add(("mcp", "servers"), "must be a mapping of server names to settings")
        return
    for name, server in servers.items():
        parsed = server_from_yaml(str(name), server, conversion)
        if parsed is not None:
            document.servers[str(name)] = parsed


#: Server fields whose value is a public choice, never a secret (a reference would not load).
_NEVER_SECRET_SERVER_FIELDS = ("transport",)


def server_from_yaml(name: str, server: Any, conversion: SecretConversion) -> ServerConfig | None:
    """One server, validated by upstream's MCPServerSettings, its secrets in stored form."""
    problems = conversion.problems
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
    for field, value in fields.items():
        if field in _NEVER_SECRET_SERVER_FIELDS or value is None:
            continue
        fields[field] = conversion.convert(
            value, (*path, field), name=field, secret_field=field == "auth"
        )
    for variable in fields.get("env") or {}:
        if secrets.is_denied_variable(str(variable)):
            problems.add(
                (*path, "env", str(variable)),
                "a server's environment cannot set this variable (it is on the deny list: "
                f"{', '.join(secrets.DENIED_VARIABLES)})",
            )
    if len(problems.items) > problems_before:
        return None
    return ServerConfig(**fields)


def _section_from_yaml(
    section: str, value: Any, document: ConfigDocument, conversion: SecretConversion
) -> None:
    problems = conversion.problems
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
        document.settings[f"{section}.{key}"] = conversion.convert(
            entry, (section, str(key)), name=str(key)
        )


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


def _yaml_shape(document: ConfigDocument) -> dict[str, Any]:
    """Upstream's YAML shape, secrets in their stored form."""
    result = _unflatten(document.settings)
    for name, provider in document.providers.items():
        section: dict[str, Any] = {}
        if provider.base_url is not None:
            section["base_url"] = provider.base_url
        if provider.api_key_ref is not None:
            section["api_key"] = provider.api_key_ref
        section.update(provider.options)
        result[name] = section
    if document.servers:
        result.setdefault("mcp", {})["servers"] = {
            name: server.set_fields() for name, server in document.servers.items()
        }
    return result


#: Renders one secret found in a document: (stored value, its path) -> what to write instead.
SecretRenderer = Callable[[str, tuple[str, ...]], Any]


def _with_secrets_rendered(
    value: Any, path: tuple[str, ...], name: str | None, render: SecretRenderer
) -> Any:
    """`value` with every secret (a reference, or plaintext stored before these rules) rendered."""
    if isinstance(value, Mapping):
        return {
            key: _with_secrets_rendered(entry, (*path, str(key)), str(key), render)
            for key, entry in value.items()
        }
    if isinstance(value, list):
        return [
            _with_secrets_rendered(entry, (*path, str(index)), name, render)
            for index, entry in enumerate(value)
        ]
    if secrets.is_reference(value) or secrets.is_literal_secret(value, name=name):
        return render(value, path)
    return value


#: Server fields whose keys name their secrets well enough to be the exported variable.
_NAMED_SERVER_MAPPINGS = ("env", "headers", "auth")


def suggested_variable(path: tuple[str, ...]) -> str:
    """The variable an export names for a secret it cannot write as a reference:
    OPENAI_API_KEY, BRAVE_KEY (a server's env), X_GOOG_KEY (a header), SERVER_URL..."""
    if len(path) == 2 and path[0] in PROVIDER_SECTIONS and path[1] == "api_key":
        parts: tuple[str, ...] = (path[0], "api_key")
    elif (
        path[:2] == ("mcp", "servers") and len(path) == 5 and path[3] in ("env", "headers", "auth")
    ):
        parts = (path[4],)
    elif path[:2] == ("mcp", "servers"):
        parts = path[2:]
    else:
        parts = path
    name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts)).upper()
    return name if not name[:1].isdigit() else f"_{name}"


def secret_locations(document: ConfigDocument) -> list[tuple[tuple[str, ...], str]]:
    """Every secret of the document, as (path in upstream's YAML, stored value)."""
    found: list[tuple[tuple[str, ...], str]] = []

    def record(value: str, path: tuple[str, ...]) -> str:
        found.append((path, value))
        return value

    _with_secrets_rendered(_yaml_shape(document), (), None, record)
    return found


def document_to_yaml(document: ConfigDocument) -> dict[str, Any]:
    """YAML that upstream fast-agent loads itself: `env:` references become `${NAME}`,
    templates their text; an encrypted value (or plaintext stored before these rules) becomes
    a `${NAME}` placeholder for the user to set (`suggested_variable`)."""

    def placeholder(value: str, path: tuple[str, ...]) -> str:
        return secrets.export_placeholder(value, suggested_env=suggested_variable(path))

    return _with_secrets_rendered(_yaml_shape(document), (), None, placeholder)


def document_to_display(document: ConfigDocument) -> dict[str, Any]:
    """YAML for people: references shown, encrypted values and stored plaintext masked."""

    def masked(value: str, _path: tuple[str, ...]) -> str:
        return secrets.mask(value) if secrets.is_reference(value) else secrets.SECRET_MASK

    return _with_secrets_rendered(_yaml_shape(document), (), None, masked)


def settings_kwargs(document: ConfigDocument) -> dict[str, Any]:
    """Keyword arguments for upstream's `Settings`, secrets still as references.

    References are resolved when used (see `mcp_agent.db.patches.secret_resolution` and
    `settings.build`), so a variable that is never needed never has to be set, and resolved
    keys do not sit in the config object that upstream logs.
    """
    return _yaml_shape(document)

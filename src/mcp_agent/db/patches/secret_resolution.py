"""Secret references (`env:NAME`, `enc:v1:...`) resolved at the moment upstream uses them.

Settings built from the database keep secrets as references (see settings/secrets.py). While a
database-backed run is active, these patches resolve them at the last possible point:

* a provider API key, where upstream reads it on every request
  (`ProviderKeyManager.get_config_file_key`); a missing variable raises upstream's own
  `ProviderKeyError` naming it;
* an MCP server's command, args, cwd and env values (stdio) or url and headers (SSE, HTTP),
  inside the parameters handed to the transport, and its `auth` inside the one connection that
  uses it.

References are `env:NAME`, `enc:v1:...` and reference templates (`tpl:Bearer ${API_TOKEN}`,
whose `${NAME}`s are substituted here). So the resolved values exist only in what starts the
server; the shared server registry, the settings object and upstream's "Found server
configuration" log line keep the references. A reference to a denied variable
(FAST_AGENT_DB_SECRET_KEY, the database URL) fails here too, and a stdio server's environment
never holds those variables, even when its env config names them.
Values that are not references pass through untouched, and outside a run nothing is patched.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mcp_agent.db.patches.attribute import AttributePatch
from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.secrets import SecretError

#: The server being launched, so a resolution error can name it (the transport is built in a
#: task started from launch_server, which inherits this).
_launching_server: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fast_agent_db_launching_server", default=None
)


def _server_field(part: str) -> str:
    server = _launching_server.get()
    return f"mcp.servers.{server}.{part}" if server else f"an MCP server's {part}"


def _server_error(error: SecretError) -> Exception:
    from mcp_agent.core.exceptions import ServerInitializationError

    server = _launching_server.get() or "?"
    return ServerInitializationError(f"MCP server '{server}' cannot start", str(error))


def _resolved(value: Any, part: str) -> Any:
    """`value` (a string, or a list or mapping of them) with its references resolved."""
    try:
        if isinstance(value, dict):
            return {
                key: secrets.resolve(entry, field=_server_field(f"{part}.{key}"))
                if secrets.is_reference(entry)
                else entry
                for key, entry in value.items()
            }
        if isinstance(value, list):
            return [
                secrets.resolve(entry, field=_server_field(f"{part}.{index}"))
                if secrets.is_reference(entry)
                else entry
                for index, entry in enumerate(value)
            ]
        if secrets.is_reference(value):
            return secrets.resolve(value, field=_server_field(part))
    except SecretError as error:
        raise _server_error(error) from None
    return value


def _without_denied_variables(env: Any) -> Any:
    """A server's environment never holds the encryption key or the database URL: neither
    from the parent (mcp passes only a safe subset) nor from the server's own env config."""
    if not isinstance(env, dict):
        return env
    return {key: value for key, value in env.items() if not secrets.is_denied_variable(key)}


def _provider_key(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_config_file_key(provider_name: str, config: Any) -> str | None:
        value = original(provider_name, config)
        if not secrets.is_reference(value):
            return value
        from mcp_agent.core.exceptions import ProviderKeyError

        try:
            return secrets.resolve(value, field=f"{provider_name}.api_key")
        except SecretError as error:
            raise ProviderKeyError(f"{provider_name} API key not available", str(error)) from None

    return get_config_file_key


def _launch_naming_the_server(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def launch_server(self: Any, server_name: str, *args: Any, **kwargs: Any) -> Any:
        token = _launching_server.set(server_name)
        try:
            return await original(self, server_name, *args, **kwargs)
        finally:
            _launching_server.reset(token)

    return launch_server


def _stdio_parameters(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def stdio_parameters(**kwargs: Any) -> Any:
        for field in ("command", "args", "cwd", "env"):
            if field in kwargs:
                kwargs[field] = _resolved(kwargs[field], field)
        if "env" in kwargs:
            kwargs["env"] = _without_denied_variables(kwargs["env"])
        return original(**kwargs)

    return stdio_parameters


def _headers_transport(original: Callable[..., Any]) -> Callable[..., Any]:
    """sse_client / streamablehttp_client: `(url, headers, ...)`, by position or name."""

    @functools.wraps(original)
    def transport(*args: Any, **kwargs: Any) -> Any:
        positional = list(args)
        for index, field in enumerate(("url", "headers")):
            if index < len(positional):
                positional[index] = _resolved(positional[index], field)
            elif field in kwargs:
                kwargs[field] = _resolved(kwargs[field], field)
        return original(*positional, **kwargs)

    return transport


def _connection_with_resolved_auth(original: type) -> type:
    class ServerConnection(original):  # type: ignore[misc, valid-type]
        """Upstream's ServerConnection, holding a private copy of its config whose auth
        key is resolved (init hooks receive `server_config.auth`)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            config = kwargs.get("server_config")
            auth = getattr(config, "auth", None)
            if auth is not None:
                fields = auth.model_dump(exclude_unset=True)
                resolved = _resolved(fields, "auth")
                if resolved != fields:
                    kwargs["server_config"] = config.model_copy(
                        update={"auth": auth.model_copy(update=resolved)}
                    )
            super().__init__(*args, **kwargs)

    ServerConnection.__qualname__ = original.__qualname__
    ServerConnection.__module__ = original.__module__
    return ServerConnection


def _patches() -> list[AttributePatch]:
    from mcp_agent.llm.provider_key_manager import ProviderKeyManager
    from mcp_agent.mcp import mcp_connection_manager

    from mcp_agent import mcp_server_registry

    patches = [
        AttributePatch(ProviderKeyManager, "get_config_file_key", _provider_key),
        AttributePatch(
            mcp_connection_manager.MCPConnectionManager, "launch_server", _launch_naming_the_server
        ),
        AttributePatch(mcp_connection_manager, "ServerConnection", _connection_with_resolved_auth),
    ]
    # Both the persistent path (connection manager) and the per-call one (server registry)
    # build their transports from names imported into their own modules.
    for module in (mcp_connection_manager, mcp_server_registry):
        patches.append(AttributePatch(module, "StdioServerParameters", _stdio_parameters))
        patches.append(AttributePatch(module, "sse_client", _headers_transport))
        patches.append(AttributePatch(module, "streamablehttp_client", _headers_transport))
    return patches


@functools.cache
def _all_patches() -> tuple[AttributePatch, ...]:
    return tuple(_patches())


def install() -> None:
    for patch in _all_patches():
        patch.acquire()


def uninstall() -> None:
    for patch in reversed(_all_patches()):
        patch.release()


@contextmanager
def secret_resolution() -> Iterator[None]:
    """References resolve where upstream uses them, for the duration of the block."""
    install()
    try:
        yield
    finally:
        uninstall()

"""Resolve secret references at the moment upstream uses them.

Two class-level wrappers, installed once per process and inert for values that are not
references (so plain upstream configurations behave exactly as before):

* `ProviderKeyManager.get_config_file_key`: upstream reads a provider's API key through it on
  every request; a reference is resolved there, and a missing variable raises upstream's own
  `ProviderKeyError` naming the variable.
* `MCPConnectionManager.launch_server`: a server's secret env, header and auth values are
  resolved into the copy used to start it; the shared registry keeps the references, which is
  what upstream logs.
"""

from __future__ import annotations

import functools
from typing import Any

from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.secrets import SecretError

_installed = False


def _resolve_mapping(mapping: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
    if not mapping:
        return mapping
    return {
        key: secrets.resolve(value, field=f"{field}.{key}")
        if secrets.is_reference(value)
        else value
        for key, value in mapping.items()
    }


def install_secret_resolution() -> None:
    global _installed
    if _installed:
        return
    from mcp_agent.core.exceptions import ProviderKeyError, ServerInitializationError
    from mcp_agent.llm.provider_key_manager import ProviderKeyManager
    from mcp_agent.mcp.mcp_connection_manager import MCPConnectionManager

    original_key = ProviderKeyManager.get_config_file_key

    @functools.wraps(original_key)
    def get_config_file_key(provider_name: str, config: Any) -> str | None:
        value = original_key(provider_name, config)
        if not secrets.is_reference(value):
            return value
        try:
            return secrets.resolve(value, field=f"{provider_name}.api_key")
        except SecretError as error:
            raise ProviderKeyError(f"{provider_name} API key not available", str(error)) from None

    original_launch = MCPConnectionManager.launch_server

    @functools.wraps(original_launch)
    async def launch_server(self: Any, server_name: str, *args: Any, **kwargs: Any) -> Any:
        registry = self.server_registry.registry
        stored = registry.get(server_name)
        if stored is None:
            return await original_launch(self, server_name, *args, **kwargs)
        field = f"mcp.servers.{server_name}"
        try:
            resolved = stored.model_copy(
                update={
                    "env": _resolve_mapping(stored.env, f"{field}.env"),
                    "headers": _resolve_mapping(stored.headers, f"{field}.headers"),
                }
            )
            if stored.auth is not None and secrets.is_reference(stored.auth.api_key):
                resolved.auth = stored.auth.model_copy(
                    update={"api_key": secrets.resolve(stored.auth.api_key, field=f"{field}.auth")}
                )
        except SecretError as error:
            raise ServerInitializationError(
                f"MCP server '{server_name}' cannot start", str(error)
            ) from None
        if resolved == stored:
            return await original_launch(self, server_name, *args, **kwargs)
        registry[server_name] = resolved
        try:
            return await original_launch(self, server_name, *args, **kwargs)
        finally:
            registry[server_name] = stored

    ProviderKeyManager.get_config_file_key = staticmethod(get_config_file_key)  # type: ignore[method-assign]
    MCPConnectionManager.launch_server = launch_server  # type: ignore[method-assign]
    _installed = True

"""/v1/servers: MCP servers, as `fast-agent-db servers list|show|add|remove`, through the
settings store. Every field of upstream's MCPServerSettings; secrets (env, headers, auth, URL
credentials) are stored and shown only as references (`env:NAME`, `tpl:Bearer ${TOKEN}`) or
`<encrypted>`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import DefinitionStore, SettingsStore
from mcp_agent.db.api.masked_secrets import keep_encrypted_values
from mcp_agent.db.api.pagination import Page, PageParameters, paginate
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.api.routers.settings import EncryptSecrets
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.limits import max_length
from mcp_agent.db.models import McpServerRow
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import ConfigDocument, ServerConfig, document_to_display

router = APIRouter(prefix="/servers", tags=["servers"])

ServerName = Annotated[
    str, Path(min_length=1, max_length=max_length(McpServerRow.name), description="The server.")
]


class Server(ServerConfig):
    """An MCP server as stored: `name` and every field, secrets as references or masked."""

    name: str


class ServerDefinition(ServerConfig):
    """An MCP server to store: every field of upstream's MCPServerSettings. `name` may be
    left out (the path names the server); a server read from GET can be sent back as is."""

    name: str | None = None


def _servers(document: ConfigDocument) -> list[Server]:
    displayed: dict[str, dict[str, Any]] = (
        document_to_display(document).get("mcp", {}).get("servers", {})
    )
    return [Server(name=name, **fields) for name, fields in displayed.items()]


async def _server(store: SettingsStore, name: str) -> Server:
    servers = _servers(await store.load_document())
    for server in servers:
        if server.name == name:
            return server
    known = ", ".join(sorted(server.name for server in servers)) or "none"
    raise UnknownValueError(
        f"mcp.servers.{name}: no MCP server with this name (there are: {known})"
    )


@router.get("", summary="MCP servers", response_model=Page[Server])
async def list_servers(
    store: SettingsStore,
    page: PageParameters,
    transport: Annotated[
        Literal["stdio", "sse", "http"] | None, Query(description="Only this transport.")
    ] = None,
) -> Page[Server]:
    servers = [
        server
        for server in _servers(await store.load_document())
        if transport is None or server.transport == transport
    ]
    return paginate(servers, page, list_name="servers", key=lambda server: (server.name,))


@router.get(
    "/{name}", summary="One MCP server", response_model=Server, responses=problem_responses(404)
)
async def get_server(store: SettingsStore, name: ServerName) -> Server:
    return await _server(store, name)


@router.put(
    "/{name}",
    summary="Create or replace an MCP server (as `servers add [--replace]`)",
    response_model=Server,
    responses={201: {"model": Server, "description": "Created"}},
)
async def put_server(
    store: SettingsStore,
    caller: Caller,
    name: ServerName,
    server: ServerDefinition,
    response: Response,
    encrypt_secrets: EncryptSecrets = False,
) -> Server:
    if server.name is not None and server.name != name:
        raise InputError("name", f"{server.name!r} differs from the server in the path ({name!r})")
    # The whole server is replaced: a field sent as null is a field not set.
    fields = {
        field: value
        for field, value in server.model_dump(exclude_unset=True, exclude={"name"}).items()
        if value is not None
    }

    def store_server(document: ConfigDocument) -> ConfigDocument:
        shaped = keep_encrypted_values({"mcp": {"servers": {name: fields}}}, document)
        return edits.add_server(
            document,
            name,
            shaped["mcp"]["servers"][name],
            replace=True,
            encrypt_literals=encrypt_secrets,
        )

    existed = name in (await store.load_document()).servers
    await store.update(store_server, changed_by=caller.audit_name)
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return await _server(store, name)


@router.delete(
    "/{name}",
    summary="Remove an MCP server (refused while an agent uses it)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
)
async def delete_server(
    store: SettingsStore, definitions: DefinitionStore, caller: Caller, name: ServerName
) -> Response:
    await _server(store, name)
    users = sorted(
        agent
        for agent, definition in (await definitions.current()).items()
        if name in definition.spec.server_names()
    )
    if users:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"mcp.servers.{name}: cannot be removed, agents use it: {', '.join(users)}",
        )
    await store.update(
        lambda document: edits.remove_server(document, name), changed_by=caller.audit_name
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

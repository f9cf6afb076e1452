"""/v1/agents: agent and workflow definitions, versioned, as `fast-agent-db agents ...`,
through the same definition store (validation, immutable versions, rollback as a new version).

A definition is a spec with upstream's decorator fields (`{"name": "review", "type": "chain",
"sequence": ["writer", "critic"]}`). `GET /v1/agents/graph` gives nodes and edges a visual
designer can draw: every live agent, and an edge from each workflow to each of its children.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import DefinitionStore
from mcp_agent.db.api.pagination import Page, PageParameters, paginate
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.api.request_text import check_storable
from mcp_agent.db.definitions.bundles import bundle_yaml
from mcp_agent.db.definitions.specs import (
    SPEC_TYPES,
    AgentDefinition,
    AgentSpec,
    DefinitionError,
    PutResult,
)
from mcp_agent.db.definitions.upsert import referrers
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.limits import AGENT_NAME_MAX_LENGTH, VERSION_RANGE
from mcp_agent.db.settings.yaml_files import parse_yaml

router = APIRouter(prefix="/agents", tags=["agents"])

#: Types that own an LLM; the others are workflows over child agents.
AGENT_TYPES = ("agent", "custom")
WORKFLOW_TYPES = tuple(kind for kind in SPEC_TYPES if kind not in AGENT_TYPES)
#: Where definitions written through the API say they came from (`source`).
API_SOURCE = "api"
#: Bodies in YAML (a bundle file as `agents import` reads it).
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")

AgentType = Literal[
    "agent", "custom", "chain", "parallel", "router", "orchestrator", "evaluator_optimizer"
]
AgentName = Annotated[
    str, Path(min_length=1, max_length=AGENT_NAME_MAX_LENGTH, description="The agent.")
]
Version = Annotated[int, Path(ge=VERSION_RANGE[0], le=VERSION_RANGE[1])]


class Agent(BaseModel):
    """One version of a definition, as `agents show --json` prints it."""

    name: str
    type: str
    version: int
    created_at: datetime
    source: str | None = None
    created_by: str | None = None
    content_hash: str
    spec: AgentSpec


class AgentVersion(BaseModel):
    """One entry of an agent's history: who stored which version, when, from where."""

    version: int
    type: str
    created_at: datetime
    source: str | None = None
    created_by: str | None = None
    content_hash: str


class AgentWrite(BaseModel):
    """What a write did: created, updated, or unchanged (no new version), and the result."""

    outcome: Literal["created", "updated", "unchanged"]
    agent: Agent


class Rollback(BaseModel):
    version: int = Field(ge=VERSION_RANGE[0], le=VERSION_RANGE[1])


class AgentBundle(BaseModel):
    """Definitions as `agents export` writes them and `agents import` reads them."""

    agents: list[AgentSpec]


class BundleImport(BaseModel):
    """What an import did, per definition."""

    results: list[PutResult]


class GraphNode(BaseModel):
    id: str
    type: str
    kind: Literal["agent", "workflow"]
    version: int
    default: bool
    model: str | None = None
    servers: list[str]
    #: A custom agent whose class only its script can provide (it runs from that script).
    requires_script: bool = False


class GraphEdge(BaseModel):
    #: The workflow.
    source: str
    #: The child agent.
    target: str
    #: sequence, fan_out, fan_in, router_target, orchestrated, generator, evaluator.
    role: str
    #: Order among the children of the same role (a chain's step: 0, 1, ...).
    position: int


class AgentGraph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def _agent(definition: AgentDefinition) -> Agent:
    return Agent(
        name=definition.name,
        type=definition.spec.type,
        version=definition.version,
        created_at=definition.created_at,
        source=definition.source,
        created_by=definition.created_by,
        content_hash=definition.content_hash,
        spec=definition.spec,
    )


def _kind(agent_type: str) -> Literal["agent", "workflow"]:
    return "agent" if agent_type in AGENT_TYPES else "workflow"


async def _definition(
    store: DefinitionStore, name: str, version: int | None = None
) -> AgentDefinition:
    try:
        return await store.get(name, version)
    except DefinitionError:
        # The store's only reason to refuse a read: no such agent (or version).
        suffix = "" if version is None else f" version {version}"
        raise UnknownValueError(f"{name}{suffix}: no such agent definition") from None


async def _write(
    store: DefinitionStore, spec: AgentSpec, caller: Caller, response: Response
) -> AgentWrite:
    (result,) = await store.put([spec], source=API_SOURCE, created_by=caller.audit_name)
    if result.outcome == "created":
        response.status_code = status.HTTP_201_CREATED
    return AgentWrite(outcome=result.outcome, agent=_agent(await _definition(store, result.name)))


@router.get("", summary="Current definitions", response_model=Page[Agent])
async def list_agents(
    store: DefinitionStore,
    page: PageParameters,
    agent_types: Annotated[
        list[AgentType] | None, Query(alias="type", description="Only these types.")
    ] = None,
    kind: Annotated[
        Literal["agent", "workflow"] | None,
        Query(description="agent (agent, custom) or workflow (chain, router, ...)."),
    ] = None,
    server: Annotated[
        str | None, Query(max_length=200, description="Only agents using this MCP server.")
    ] = None,
) -> Page[Agent]:
    definitions = [
        definition
        for definition in (await store.current()).values()
        if (not agent_types or definition.spec.type in agent_types)
        and (kind is None or _kind(definition.spec.type) == kind)
        and (server is None or server in definition.spec.server_names())
    ]
    found = paginate(definitions, page, list_name="agents", key=lambda d: (d.name,))
    return Page(items=[_agent(d) for d in found.items], next_cursor=found.next_cursor)


@router.get(
    "/graph", summary="Agents and their links, for a visual designer", response_model=AgentGraph
)
async def agent_graph(store: DefinitionStore) -> AgentGraph:
    definitions = await store.current()
    nodes = [
        GraphNode(
            id=name,
            type=definition.spec.type,
            kind=_kind(definition.spec.type),
            version=definition.version,
            default=definition.spec.default,
            model=getattr(definition.spec, "model", None),
            servers=definition.spec.server_names(),
            requires_script=getattr(definition.spec, "requires_script", False),
        )
        for name, definition in sorted(definitions.items())
    ]
    edges = [
        GraphEdge(source=name, target=child, role=role, position=position)
        for name, definition in sorted(definitions.items())
        for role, position, child in definition.spec.links()
    ]
    return AgentGraph(nodes=nodes, edges=edges)


@router.get(
    "/export",
    summary="Definitions as a bundle (as `agents export`)",
    response_model=AgentBundle,
    # As `agents export` writes a bundle: fields left at null are left out.
    response_model_exclude_none=True,
    responses={200: {"content": {"application/yaml": {}}}, **problem_responses(404)},
)
async def export_agents(
    store: DefinitionStore,
    name: Annotated[
        list[str] | None, Query(description="Only these agents (default: all).")
    ] = None,
    output_format: Annotated[
        Literal["json", "yaml"], Query(alias="format", description="json or yaml.")
    ] = "json",
) -> AgentBundle | PlainTextResponse:
    definitions = await store.current(name or None)
    missing = sorted(set(name or []) - set(definitions))
    if missing:
        raise UnknownValueError(f"no such agent definition: {', '.join(missing)}")
    if output_format == "yaml":
        return PlainTextResponse(bundle_yaml(definitions.values()), media_type="application/yaml")
    return AgentBundle(agents=[definition.spec for definition in definitions.values()])


async def _bundle_from(request: Request) -> AgentBundle:
    """The request's bundle, JSON or (by its Content-Type) YAML, validated field by field."""
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media_type in YAML_MEDIA_TYPES:
            document: Any = parse_yaml(body.decode("utf-8"), source="request body")
        else:
            document = _json(body)
    except UnicodeDecodeError:
        raise InputError("body", "not UTF-8 text") from None
    check_storable(document)
    try:
        return AgentBundle.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])} for detail in error.errors()],
            body=document,
        ) from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise InputError("body", f"not valid JSON ({error})") from None


@router.post(
    "/import",
    summary="Store a bundle of definitions in one transaction (as `agents import`)",
    response_model=BundleImport,
    responses=problem_responses(422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AgentBundle"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_agents(request: Request, store: DefinitionStore, caller: Caller) -> BundleImport:
    bundle = await _bundle_from(request)
    results = await store.put(bundle.agents, source=API_SOURCE, created_by=caller.audit_name)
    return BundleImport(results=results)


@router.post(
    "",
    summary="Create a definition (409 when the name is taken)",
    response_model=AgentWrite,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
async def create_agent(
    store: DefinitionStore,
    caller: Caller,
    spec: Annotated[AgentSpec, Body()],
    response: Response,
) -> AgentWrite:
    if spec.name in await store.current([spec.name]):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{spec.name}: an agent of this name exists (PUT /v1/agents/{spec.name} updates it)",
        )
    return await _write(store, spec, caller, response)


@router.get(
    "/{name}", summary="One definition", response_model=Agent, responses=problem_responses(404)
)
async def get_agent(
    store: DefinitionStore,
    name: AgentName,
    version: Annotated[
        int | None,
        Query(ge=VERSION_RANGE[0], le=VERSION_RANGE[1], description="Default: the current one."),
    ] = None,
) -> Agent:
    return _agent(await _definition(store, name, version))


@router.put(
    "/{name}",
    summary="Create or update a definition (a new version only when it changed)",
    response_model=AgentWrite,
    responses={201: {"model": AgentWrite, "description": "Created"}},
)
async def put_agent(
    store: DefinitionStore,
    caller: Caller,
    name: AgentName,
    spec: Annotated[AgentSpec, Body()],
    response: Response,
) -> AgentWrite:
    if spec.name != name:
        raise InputError("name", f"{spec.name!r} differs from the agent in the path ({name!r})")
    return await _write(store, spec, caller, response)


@router.delete(
    "/{name}",
    summary="Delete a definition (its history stays; refused while another agent uses it)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
)
async def delete_agent(store: DefinitionStore, name: AgentName) -> Response:
    live = {agent: definition.spec for agent, definition in (await store.current()).items()}
    if name not in live:
        raise UnknownValueError(f"{name}: no such agent definition")
    users = referrers(live, name)
    if users:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"{name}: cannot be deleted, used by {', '.join(users)}"
        )
    await store.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/versions",
    summary="Every version of a definition, oldest first",
    response_model=Page[Agent],
    responses=problem_responses(404),
)
async def list_versions(
    store: DefinitionStore, name: AgentName, page: PageParameters
) -> Page[Agent]:
    found = paginate(
        await _versions(store, name), page, list_name=f"versions:{name}", key=lambda d: (d.version,)
    )
    return Page(items=[_agent(d) for d in found.items], next_cursor=found.next_cursor)


@router.get(
    "/{name}/versions/{version}",
    summary="One version of a definition",
    response_model=Agent,
    responses=problem_responses(404),
)
async def get_version(store: DefinitionStore, name: AgentName, version: Version) -> Agent:
    return _agent(await _definition(store, name, version))


@router.get(
    "/{name}/history",
    summary="Who stored which version, when, from where (as `agents history`)",
    response_model=Page[AgentVersion],
    responses=problem_responses(404),
)
async def agent_history(
    store: DefinitionStore, name: AgentName, page: PageParameters
) -> Page[AgentVersion]:
    found = paginate(
        await _versions(store, name), page, list_name=f"history:{name}", key=lambda d: (d.version,)
    )
    return Page(
        items=[
            AgentVersion(
                version=d.version,
                type=d.spec.type,
                created_at=d.created_at,
                source=d.source,
                created_by=d.created_by,
                content_hash=d.content_hash,
            )
            for d in found.items
        ],
        next_cursor=found.next_cursor,
    )


@router.post(
    "/{name}/rollback",
    summary="Restore an earlier version, as a new version",
    response_model=AgentWrite,
    responses=problem_responses(404),
)
async def rollback_agent(
    store: DefinitionStore, caller: Caller, name: AgentName, rollback: Rollback
) -> AgentWrite:
    await _definition(store, name, rollback.version)
    result = await store.rollback(name, rollback.version, created_by=caller.audit_name)
    return AgentWrite(outcome=result.outcome, agent=_agent(await _definition(store, name)))


async def _versions(store: DefinitionStore, name: str) -> list[AgentDefinition]:
    try:
        return await store.versions(name)
    except DefinitionError:
        raise UnknownValueError(f"{name}: no such agent definition") from None

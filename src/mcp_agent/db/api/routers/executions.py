"""/v1/executions and /v1/usage: agent calls as trees with tokens and cost, and usage grouped,
as `fast-agent-db executions list|show` and `fast-agent-db usage`, through the same execution
store and usage report.

Every agent call of a run is an execution; a workflow's call is the parent of its steps' calls
and its tokens and cost are their sums, so a root holds its whole run's totals.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.json_documents import json_response
from mcp_agent.db.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    Page,
    encode_cursor,
    timed_cursor,
)
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.cli.durations import UNITS_HELP, parse_since
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.executions.base import ExecutionRecord, ExecutionStatus
from mcp_agent.db.executions.reports import GroupBy, usage_report
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.limits import (
    AGENT_NAME_MAX_LENGTH,
    EXECUTION_ID_MAX_LENGTH,
    MODEL_NAME_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
)
from mcp_agent.db.lookups import require_match
from mcp_agent.db.models.executions import ExecutionRow, UsageTurnRow
from mcp_agent.db.runtime import DatabaseRuntime

router = APIRouter(tags=["executions"])

ExecutionId = Annotated[
    str, Path(min_length=1, max_length=EXECUTION_ID_MAX_LENGTH, description="The execution.")
]
SessionFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=SESSION_ID_MAX_LENGTH, description="Only this session."),
]
AgentFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=AGENT_NAME_MAX_LENGTH, description="Only this agent."),
]
SinceFilter = Annotated[
    str | None,
    Query(max_length=100, description=f"An age ({UNITS_HELP}) or an ISO time."),
]


async def execution_store(runtime: Runtime) -> SqlExecutionStore:
    return SqlExecutionStore(runtime)


ExecutionStore = Annotated[SqlExecutionStore, Depends(execution_store)]


class Execution(BaseModel):
    """One agent call, as `executions list --json` lists it."""

    execution_id: str
    parent_execution_id: str | None = None
    session_id: str | None = None
    agent_name: str
    #: fa_agent_versions.agent_version_id of the definition it ran.
    agent_version_id: int | None = None
    #: Upstream's method: generate, structured, ...
    operation: str
    status: ExecutionStatus
    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: USD, from the prices in fa_models; null when the model has none.
    cost: Decimal | None = None
    #: `database`, or `file PATH` when the run was given a configuration file.
    settings_source: str | None = None


class ExecutionNode(Execution):
    #: Its sub-calls, in the order they started.
    children: list[ExecutionNode] = Field(default_factory=list)


class ExecutionTree(BaseModel):
    execution_id: str
    #: How many executions the tree holds, the root included.
    count: int
    root: ExecutionNode


class UsageGroup(BaseModel):
    #: The model, agent or session (as `by` says) the row sums up.
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    cost: Decimal | None = None


class UsageReport(BaseModel):
    by: GroupBy
    groups: list[UsageGroup]


def execution_document(record: ExecutionRecord) -> dict[str, Any]:
    # A dict, not an Execution: json_documents says why (a tree can hold thousands of calls).
    return {
        "execution_id": record.execution_id,
        "parent_execution_id": record.parent_execution_id,
        "session_id": record.session_id,
        "agent_name": record.agent_name,
        "agent_version_id": record.agent_version_id,
        "operation": record.operation,
        "status": record.status,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_seconds": record.duration_seconds,
        "error": record.error,
        "model": record.model,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost": record.cost,
        "settings_source": record.settings_source,
    }


def tree_document(records: list[ExecutionRecord]) -> dict[str, Any]:
    """An ExecutionTree of the store's records (parents before children), as a dict."""
    nodes: dict[str, dict[str, Any]] = {}
    root: dict[str, Any] | None = None
    for record in records:
        node = {**execution_document(record), "children": []}
        nodes[record.execution_id] = node
        parent = nodes.get(record.parent_execution_id or "")
        if parent is not None:
            parent["children"].append(node)
        elif root is None:
            root = node
    assert root is not None
    return {"execution_id": root["execution_id"], "count": len(records), "root": root}


def since_time(text: str | None) -> datetime | None:
    """Raises:
    InputError: naming `since`."""
    try:
        return parse_since(text, option="since")
    except InputError as error:
        raise InputError("since", error.reason) from None


async def require_filter_match(
    runtime: DatabaseRuntime, column: Any, value: str | None, *, field: str, where: str
) -> None:
    """A filter value that names nothing is a typo, said as such (as the CLI says it): checked
    only after a filtered read came back empty.

    Raises:
        InputError: naming `field` and values that exist.
    """
    if value is None:
        return
    try:
        await require_match(runtime, column, value, option=field, where=where)
    except UnknownValueError as error:
        raise InputError(field, str(error).removeprefix(f"{field} ")) from None


@router.get(
    "/executions",
    response_model=Page[Execution],
    summary="User-level executions (roots), newest first",
)
async def list_executions(
    runtime: Runtime,
    store: ExecutionStore,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"At most {MAX_PAGE_SIZE}.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    session: SessionFilter = None,
    agent: AgentFilter = None,
    status: Annotated[ExecutionStatus | None, Query(description="Only this status.")] = None,
) -> Page[Execution]:
    """The calls a user made (those without a parent), as `executions list`; each holds its
    run's totals. `GET /v1/executions/{id}` shows one as a tree."""
    before = None if cursor is None else timed_cursor(cursor, "executions")
    found = await store.roots_page(
        limit=limit + 1, before=before, session_id=session, agent_name=agent, status=status
    )
    if not found and before is None:
        await require_filter_match(
            runtime, ExecutionRow.agent_name, agent, field="agent", where="execution"
        )
        await require_filter_match(
            runtime, ExecutionRow.session_id, session, field="session", where="execution"
        )
    items = [Execution(**execution_document(record)) for record in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = encode_cursor("executions", (last.started_at.isoformat(), last.execution_id))
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/executions/{execution_id}",
    response_model=ExecutionTree,
    responses=problem_responses(404),
    summary="An execution and its sub-calls as a tree, with durations, tokens and cost",
)
async def get_execution(store: ExecutionStore, execution_id: ExecutionId) -> Response:
    """As `executions show`: any execution of a tree may be asked for, and is the root of what
    is returned."""
    records = await store.tree(execution_id)
    if not records:
        raise UnknownValueError(f"no execution {execution_id!r}")
    return json_response(tree_document(records))


@router.get(
    "/usage",
    response_model=UsageReport,
    summary="Token usage and cost of provider calls, grouped",
)
async def usage(
    runtime: Runtime,
    by: Annotated[
        Literal["model", "agent", "session"], Query(description="Group by model, agent or session.")
    ] = "model",
    session: SessionFilter = None,
    agent: AgentFilter = None,
    model: Annotated[
        str | None,
        Query(min_length=1, max_length=MODEL_NAME_MAX_LENGTH, description="Only this model."),
    ] = None,
    since: SinceFilter = None,
) -> UsageReport:
    """As `fast-agent-db usage`: every provider API call counted once, priced from fa_models."""
    rows = await usage_report(
        runtime,
        group_by=by,
        session_id=session,
        agent_name=agent,
        model=model,
        since=since_time(since),
    )
    if not rows:
        await require_filter_match(
            runtime, ExecutionRow.agent_name, agent, field="agent", where="execution"
        )
        await require_filter_match(
            runtime, UsageTurnRow.model, model, field="model", where="provider call"
        )
        await require_filter_match(
            runtime, ExecutionRow.session_id, session, field="session", where="execution"
        )
    return UsageReport(
        by=by,
        groups=[
            UsageGroup(
                key=row.key,
                calls=row.calls,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cache_read_tokens=row.cache_read_tokens,
                reasoning_tokens=row.reasoning_tokens,
                cost=row.cost,
            )
            for row in rows
        ],
    )

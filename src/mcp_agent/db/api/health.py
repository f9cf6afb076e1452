"""`/healthz` (the process answers) and `/readyz` (the database answers, at the schema this
code needs). Both answer without a token, so they say nothing about where the database is."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from mcp_agent.db.api.dependencies import Runtime
from mcp_agent.db.api.problems import problem_response, problem_responses
from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.schema_head import SCHEMA_HEAD

#: How long /readyz waits for the database before calling it unreachable.
READINESS_TIMEOUT_S = 5.0

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    dialect: str
    schema_revision: str
    schema_head: str


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=problem_responses(503),
    summary="The database is reachable and its schema is current",
)
async def readyz(request: Request, runtime: Runtime) -> Readiness | JSONResponse:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            revision = await runtime.schema_revision()
    except (FastAgentDbError, SQLAlchemyError, OSError, TimeoutError):
        return problem_response(
            request,
            503,
            kind="not-ready",
            detail="The database is not reachable.",
            headers={"Retry-After": "5"},
        )
    if revision != SCHEMA_HEAD:
        return problem_response(
            request,
            503,
            kind="not-ready",
            detail=f"The database schema is at revision {revision or 'none'}; this server needs "
            f"{SCHEMA_HEAD} (fast-agent-db db upgrade).",
            headers={"Retry-After": "5"},
        )
    return Readiness(dialect=runtime.dialect, schema_revision=revision, schema_head=SCHEMA_HEAD)

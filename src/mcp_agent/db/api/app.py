"""The ASGI app: `create_app(database_url)` for `fast-agent-db serve` or to embed.

One DatabaseRuntime per app, opened by the lifespan and closed with it; every request runs
its store operations in short sessions of its own on it. Every route under /v1 needs a bearer
token (auth.py); /healthz and /readyz do not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from mcp_agent.db.api import health
from mcp_agent.db.api.auth import require_token
from mcp_agent.db.api.limits import MAX_BODY_BYTES, RequestBodyLimit
from mcp_agent.db.api.problems import install_problem_handlers, problem_responses
from mcp_agent.db.api.request_text import refuse_unstorable_text
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

API_PREFIX = "/v1"


def _resource_routers() -> list[APIRouter]:
    """Every resource's router, in the order /docs lists them."""
    from mcp_agent.db.api.routers import (
        agents,
        events,
        executions,
        models,
        providers,
        queued_runs,
        runs,
        servers,
        sessions,
        settings,
        webhooks,
    )

    return [
        settings.router,
        providers.router,
        models.router,
        servers.router,
        agents.router,
        sessions.router,
        runs.router,
        queued_runs.router,
        webhooks.router,
        executions.router,
        events.router,
    ]


def create_app(database_url: str | None = None, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The REST API over the database at `database_url` (default: as every command resolves
    it: FAST_AGENT_DATABASE_URL, else ./fastagent.db).

    The database is opened when the app starts (its lifespan), its schema created if it has
    none; a database at another revision stops the start with the error saying what to run.
    """
    raw_url = resolve_database_url(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await DatabaseRuntime.open(app.state.database_url)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    from mcp_agent.db import __version__

    app = FastAPI(
        title="fast-agent-db",
        summary="fast-agent's settings, agents and workflows, sessions and executions, in a "
        "database.",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    #: Read when the app starts (its lifespan).
    app.state.database_url = raw_url
    install_problem_handlers(app)
    app.add_middleware(RequestBodyLimit, max_bytes=max_body_bytes)
    app.include_router(health.router)
    protected = APIRouter(
        prefix=API_PREFIX,
        # The token first: a request without one learns nothing else.
        dependencies=[Depends(require_token), Depends(refuse_unstorable_text)],
        # 400: a body that cannot be parsed at all; 413: one over the size limit.
        responses=problem_responses(400, 401, 413, 422, 503),
    )
    for router in _resource_routers():
        protected.include_router(router)
    app.include_router(protected)
    return app

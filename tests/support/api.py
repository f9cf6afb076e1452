"""The REST API in-process, for tests: create_app on a test database, its lifespan entered,
an httpx client over ASGITransport carrying a fresh token (nothing listens on a port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.datastructures import State

from mcp_agent.db.api import create_app
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tokens.sql import SqlTokenStore
from mcp_agent.db.urls import resolve_database_url


class ApiClient(httpx.AsyncClient):
    """An httpx client of an in-process app, which it keeps for tests that look inside."""

    app: FastAPI
    token: str

    @property
    def runtime(self) -> DatabaseRuntime:
        return self.app.state.runtime


#: Apps not in use, kept for the next test: building one (every router and route) costs more
#: than most API tests. An app holds nothing of a test but its `state`, which is made anew.
_idle_apps: list[FastAPI] = []


@asynccontextmanager
async def _app_on(database_url: str) -> AsyncIterator[FastAPI]:
    app = _idle_apps.pop() if _idle_apps else create_app(database_url)
    app.state = State()
    app.state.database_url = resolve_database_url(database_url)
    try:
        yield app
    finally:
        _idle_apps.append(app)


@asynccontextmanager
async def api_client(
    database_url: str, *, token_name: str = "tests", raise_app_exceptions: bool = True
) -> AsyncIterator[ApiClient]:
    async with _app_on(database_url) as app, app.router.lifespan_context(app):
        created = await SqlTokenStore(app.state.runtime).create(token_name)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with ApiClient(
            transport=transport,
            base_url="http://fast-agent-db.test",
            headers={"Authorization": f"Bearer {created.value}"},
        ) as client:
            client.app = app
            client.token = created.value
            yield client


def assert_problem(response: httpx.Response, status: int, *fields: str) -> dict:
    """`response` is an RFC 9457 problem of `status` naming each of `fields`; its document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["type"]
    named = {error["field"] for error in problem["errors"]}
    for field in fields:
        assert field in named, f"{field} not named in {problem}"
    return problem

"""The conformance suite's one fixture: every store protocol, on each backend.

`stores` runs a test once on the in-memory stores (the reference implementations and test
doubles), once on SQLite and once on PostgreSQL. A new implementation of a store protocol
joins with a bundle (stores.py) and a backend in STORE_BACKENDS; it conforms when the suite
passes on it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_agent.db.runtime import DatabaseRuntime
from tests.conformance.stores import Stores, in_memory_stores, sql_stores
from tests.support.databases import PostgresDatabases

#: The backends: the marks are the ones tests/conftest.py's BACKENDS apply, so the summary by
#: backend counts these tests too (the in-memory run has no mark).
STORE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
]


def _fresh_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A copy of the session's migrated template: no migration runs per test."""
    if backend == "sqlite":
        path = tmp_path / "conformance.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create(template=request.getfixturevalue("postgres_template"))
    request.addfinalizer(lambda: databases.drop(name))
    return databases.url(name)


@pytest.fixture(params=STORE_BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    backend: str = request.param
    if backend == "memory":
        yield in_memory_stores()
        return
    async with await DatabaseRuntime.open(
        _fresh_database_url(backend, request, tmp_path)
    ) as runtime:
        yield sql_stores(backend, runtime)

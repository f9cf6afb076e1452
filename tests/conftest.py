"""Fixtures shared by the whole suite.

Database fixtures are parametrised over both backends: a test that takes `database_url`
(migrated, empty of rows) or `empty_database_url` (no schema) runs once on SQLite and once on
PostgreSQL. Nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcp_agent.db.migration_runner import MigrationRunner
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.embedded_postgres import choose_postgres
from tests.support.databases import PostgresDatabases, postgres_server

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
]


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    choice = choose_postgres()
    with postgres_server(choice) as server_url:
        databases = PostgresDatabases(server_url)
        if choice.source == "embedded":
            # Ours to configure (a configured server never is): a throwaway server needs no
            # flush to disk, and each test's CREATE DATABASE no longer waits on one.
            databases.skip_flushes_to_disk()
        yield databases


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A database migrated to head, cloned for each test."""
    name = postgres_databases.create()
    with MigrationRunner(postgres_databases.url(name)) as runner:
        runner.upgrade()
    yield name
    postgres_databases.drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    with MigrationRunner(f"sqlite:///{path}") as runner:
        runner.upgrade()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database with no schema at all, on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create()
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database migrated to head and holding no rows, on the test's backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create(template=request.getfixturevalue("postgres_template"))
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[DatabaseRuntime]:
    runtime = await DatabaseRuntime.open(database_url)
    yield runtime
    await runtime.close()


#: Set to 1 to run the tests marked `one_backend` on both backends as well.
EVERY_BACKEND_ENV = "FAST_AGENT_TEST_EVERY_BACKEND"


def _every_backend() -> bool:
    return os.environ.get(EVERY_BACKEND_ENV, "").strip() in ("1", "true", "yes")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which PostgreSQL the run uses, and why (see mcp_agent.db.testing.embedded_postgres)."""
    from mcp_agent.db.testing.embedded_postgres import choose_postgres

    choice = choose_postgres()
    scope = (
        "on both backends"
        if _every_backend()
        else f"on the backend each names (set {EVERY_BACKEND_ENV}=1 for both)"
    )
    return [
        f"PostgreSQL: {choice.source} ({choice.reason})",
        f"tests marked one_backend: {scope}",
        "PostgreSQL cases of tests that also run on SQLite (outside tests/conformance): "
        + ("not slow" if _every_backend() else "marked slow, so not in the fast loop"),
    ]


def _sqlite_twin(nodeid: str) -> str:
    """The node id of the SQLite case of a PostgreSQL case (its parameters' id changed)."""
    name, bracket, parameters = nodeid.partition("[")
    return name + bracket + parameters.replace("postgresql", "sqlite")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the marks added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two rules that keep the everyday loop (`-m "not slow"`) short, both off with
    FAST_AGENT_TEST_EVERY_BACKEND=1:

    * a test marked `one_backend(NAME)` runs on that backend only: real-process tests whose
      point is not the store (the conformance suite runs every store on both) run once;
    * outside tests/conformance, the PostgreSQL case of a test that also runs on SQLite is
      marked `slow`: the fast loop runs the conformance suite on memory, SQLite and PostgreSQL,
      the PostgreSQL-only tests, and everything else on SQLite. The full run has every case.
    """
    if _every_backend():
        return
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("one_backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if marker is not None and backend is not None and backend != marker.args[0]:
            dropped.append(item)
        else:
            kept.append(item)
    # Twins among the tests that run: a one_backend("postgresql") test has none.
    running = {item.nodeid for item in kept}
    for item in kept:
        if (
            item.get_closest_marker("postgresql") is not None
            and "/conformance/" not in item.nodeid
            and _sqlite_twin(item.nodeid) in running
        ):
            item.add_marker(pytest.mark.slow)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


_BACKEND_OUTCOMES: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes per database backend (runs in the xdist controller too)."""
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    for backend in ("sqlite", "postgresql"):
        if backend in report.keywords:
            counts = _BACKEND_OUTCOMES.setdefault(backend, {})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    if not _BACKEND_OUTCOMES:
        return
    terminalreporter.section("database backends")
    for backend, counts in sorted(_BACKEND_OUTCOMES.items()):
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        terminalreporter.write_line(f"{backend}: {summary}")


@pytest.fixture
def fresh_upstream_state() -> Iterator[None]:
    """Upstream's process-wide settings cache, logging and event bus, reset around a test
    that runs an app in-process (and put back after)."""
    import mcp_agent.config as upstream_config
    from mcp_agent.logging.logger import LoggingConfig
    from mcp_agent.logging.transport import AsyncEventBus

    saved = upstream_config._settings
    LoggingConfig._initialized = False
    AsyncEventBus.reset()
    yield
    upstream_config._settings = saved
    LoggingConfig._initialized = False
    AsyncEventBus.reset()

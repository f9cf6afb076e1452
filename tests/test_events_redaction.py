"""Nothing leaked (issue #13): secrets in server configurations stay out of the event log.

The trial found a server's secret in full in an `fa_events` debug event: upstream's
`launch_server` logs "Found server configuration" with `data=config.model_dump()`, and its own
redaction keeps the first ten characters of a few field names only. Each case below logs the
way upstream does, through upstream's logger into a real database, then looks for every
planted value (and its first ten characters) in a dump of every table, in `fast-agent-db logs`
and in the process's output.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from mcp_agent.config import (
    LoggerSettings,
    MCPServerAuthSettings,
    MCPServerSettings,
    MCPSettings,
    Settings,
)
from mcp_agent.logging.logger import get_logger
from mcp_agent.logging.transport import AsyncEventBus
from mcp_agent.mcp.mcp_agent_client_session import MCPAgentClientSession
from mcp_agent.mcp_server_registry import ServerRegistry
from sqlalchemy import inspect, text

from mcp_agent.db.events.capture import EventWriter
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.patches.event_transport import install, uninstall
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.secrets import resolve
from tests.support.cli import ainvoke


def planted() -> str:
    return f"PLANTED{uuid.uuid4().hex}"


Planted = dict[str, str]


async def launch_a_server_with_secrets(values: Planted) -> None:
    """Upstream's own launch_server logs the configuration; the connection then fails."""
    server = MCPServerSettings(
        transport="http",
        url=f"http://reader:{values['password']}@127.0.0.1:9/mcp?token={values['token']}&v=1",
        headers={"X-Goog-Key": values["goog"], "Cookie": f"session={values['cookie']}"},
        env={"BRAVE_KEY": values["brave"]},
        auth=MCPServerAuthSettings(api_key=values["api_key"]),
    )
    registry = ServerRegistry(config=Settings(mcp=MCPSettings(servers={"planted": server})))
    async with registry.connection_manager as manager:
        with pytest.raises(Exception, match="planted"):
            await manager.get_server("planted", client_session_factory=MCPAgentClientSession)


async def log_secrets_in_text(values: Planted) -> None:
    logger = get_logger("tests.redaction")
    logger.error(f"cannot reach postgresql://app:{values['password']}@db.internal/app")
    logger.warning(f"retrying GET https://api.example/v1?api_key={values['api_key']}&page=2")
    logger.info(f"sent Authorization: Bearer {values['token']}")
    logger.info("starting", data={"args": [f"--access-token={values['cookie']}"]})
    logger.debug(
        "request", data={"request": {"headers": {"Authorization": f"Basic {values['goog']}"}}}
    )


async def log_a_resolved_secret(values: Planted) -> None:
    """A secret stored as a reference, resolved in this process, then logged by anyone."""
    os.environ["FA_TEST_REDACTION_SECRET"] = values["brave"]
    try:
        resolved = resolve("env:FA_TEST_REDACTION_SECRET", field="mcp.servers.x.env.X")
    finally:
        del os.environ["FA_TEST_REDACTION_SECRET"]
    get_logger("tests.redaction").info(f"server started with {resolved}", data={"v": resolved})


CASES: list[tuple[str, Callable[[Planted], Awaitable[None]], tuple[str, ...]]] = [
    (
        "Found server configuration: env, headers, URL userinfo and token, auth",
        launch_a_server_with_secrets,
        ("password", "token", "goog", "cookie", "brave", "api_key"),
    ),
    (
        "URLs, query parameters and authorization headers in text",
        log_secrets_in_text,
        ("password", "api_key", "token", "cookie", "goog"),
    ),
    ("a secret resolved from a stored reference", log_a_resolved_secret, ("brave",)),
]


@pytest.fixture
async def upstream_context(fresh_upstream_state: None) -> AsyncIterator[None]:
    """Upstream's context and logging set up before capture is installed, as a run does: set
    up lazily later (by the first MCP client session), upstream's logging configuration would
    put its own transport in place of the capturing one."""
    import mcp_agent.context as upstream

    saved = upstream._global_context
    settings = Settings(logger=LoggerSettings(type="none", progress_display=False))
    upstream._global_context = await upstream.initialize_context(settings)
    yield
    upstream._global_context = saved


async def dump_every_table(database_url: str) -> str:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            rows = [
                repr(list(await connection.execute(text(f'SELECT * FROM "{table}"'))))
                for table in tables
            ]
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("emit", "names"), [pytest.param(emit, names, id=case) for case, emit, names in CASES]
)
async def test_secrets_in_logged_events_never_reach_the_event_log(
    database_url: str,
    tmp_path: Path,
    upstream_context: None,
    capfd: pytest.CaptureFixture[str],
    emit: Callable[[Planted], Awaitable[None]],
    names: tuple[str, ...],
) -> None:
    values = {name: planted() for name in names}
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=tmp_path / "spill")
        await writer.start()
        capturing = install(writer, level="debug")
        try:
            await emit(values)
            await asyncio.sleep(0)  # upstream's logger emits from tasks of its own
            while any(not task.done() for task in _emit_tasks()):
                await asyncio.sleep(0.01)
        finally:
            uninstall(capturing)
            await writer.close()

    stored = await dump_every_table(database_url)
    shown = (await ainvoke("logs", "--level", "debug", "--database-url", database_url)).output
    output = "".join(capfd.readouterr())
    assert writer.written > 0 and "***" in stored
    for where, found in (("a table", stored), ("logs", shown), ("the output", output)):
        # Not even a part: upstream's own redaction would have kept the first ten characters.
        assert "PLANTED" not in found, f"a planted value in {where}"
        for name, value in values.items():
            assert value[-16:] not in found, f"the end of {name} in {where}"
    if emit is launch_a_server_with_secrets:
        # The events themselves are kept, the connection's failure included.
        assert "Found server configuration" in stored and "Lifecycle task" in stored


def _emit_tasks() -> list[asyncio.Task[object]]:
    """Upstream's logger emits each event from a task running AsyncEventBus.emit."""
    bus_emit = AsyncEventBus.emit.__qualname__
    return [
        task
        for task in asyncio.all_tasks()
        if bus_emit in getattr(task.get_coro(), "__qualname__", "")
    ]

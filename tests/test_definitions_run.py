"""Each upstream agent type, defined only in the database, runs through `fast-agent-db run`
and replies exactly as the same workflow declared with decorators under plain upstream."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp_agent.logging.events import Event  # noqa: F401 - upstream logging loaded before reset
from mcp_agent.logging.logger import LoggingConfig
from mcp_agent.logging.transport import AsyncEventBus

from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"
ROUTE_TO_B = '***FIXED_RESPONSE {"agent": "route_b", "confidence": "high", "reasoning": "b"}'
MESSAGES = {
    "solo": "hello agent",
    "shouter": "hello custom",
    "pipeline": "hello chain",
    "fanout": "hello parallel",
    "dispatcher": ROUTE_TO_B,
    "planner": "make a plan",
    "refiner": "first draft",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream_replies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Plain upstream: the decorator script, its YAML config, no database anywhere."""
    workdir = tmp_path_factory.mktemp("upstream")
    for name in ("every_type.py", "fastagent.config.yaml"):
        shutil.copy(WORKFLOWS / name, workdir / name)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("FAST_AGENT_DATABASE_URL", None)
    result = run_guarded(
        [sys.executable, "every_type.py", json.dumps(MESSAGES)],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPLIES:"))
    return json.loads(line.removeprefix("REPLIES:"))


@pytest.fixture
async def database_with_definitions(database_url: str) -> str:
    for args in (
        ["config", "import", str(WORKFLOWS / "fastagent.config.yaml")],
        ["agents", "import", str(WORKFLOWS / "every_type.yaml")],
    ):
        result = await ainvoke(*args, "--database-url", database_url)
        assert result.exit_code == 0, result.output
    return database_url


def _reset_upstream_logging() -> None:
    # Each CLI invocation runs its own event loop; upstream's tests reset the bus likewise.
    LoggingConfig._initialized = False
    AsyncEventBus.reset()


async def test_every_type_runs_from_the_database_as_upstream_runs_it(
    database_with_definitions: str, upstream_replies: dict[str, str]
) -> None:
    assert set(upstream_replies) == set(MESSAGES)
    for name, message in MESSAGES.items():
        _reset_upstream_logging()
        result = await ainvoke(
            "run", name, "-m", message, "--database-url", database_with_definitions
        )
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert result.stdout == upstream_replies[name] + "\n", name
    assert upstream_replies["shouter"] == "HELLO CUSTOM"
    assert '"agent": "route_b"' in upstream_replies["dispatcher"]


async def test_every_call_records_the_definition_version_it_ran(
    database_with_definitions: str,
) -> None:
    from mcp_agent.db.definitions.sql import SqlDefinitionStore
    from mcp_agent.db.executions.sql import SqlExecutionStore
    from mcp_agent.db.runtime import DatabaseRuntime

    _reset_upstream_logging()
    result = await ainvoke(
        "run", "pipeline", "-m", "hello chain", "--database-url", database_with_definitions
    )
    assert result.exit_code == 0, result.output
    async with await DatabaseRuntime.open(database_with_definitions) as runtime:
        definitions = await SqlDefinitionStore(runtime).current()
        executions = SqlExecutionStore(runtime)
        (root,) = await executions.roots()
        tree = await executions.tree(root.execution_id)
    assert (root.agent_name, root.status, root.parent_execution_id) == (
        "pipeline",
        "completed",
        None,
    )
    assert root.agent_version_id == definitions["pipeline"].agent_version_id
    steps = [record for record in tree if record.parent_execution_id == root.execution_id]
    assert [step.agent_name for step in steps] == ["chain_first", "chain_second"]
    assert all(
        step.agent_version_id == definitions[step.agent_name].agent_version_id for step in steps
    )
    assert all(record.status == "completed" and record.finished_at for record in tree)

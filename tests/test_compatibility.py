"""Drop-in compatibility: unchanged upstream scripts and upstream's CLI, without a database
and with one (SQLite and PostgreSQL), give identical output; the database holds the rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mcp_agent.db.models import AgentRow, ExecutionRow, MessageRow, SessionRow
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S, run_guarded
from tests.test_definitions_run import MESSAGES

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"
EXAMPLES = ROOT / "examples" / "workflows"
BIN = Path(sys.executable).parent

# One backend: CI runs the upstream suite's unchanged scripts on both backends.
pytestmark = [pytest.mark.slow, pytest.mark.one_backend("postgresql")]


def _environment(database_url: str | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
    environment["PYTHONPATH"] = str(ROOT)
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    if database_url:
        environment["FAST_AGENT_DATABASE_URL"] = database_url
    return environment


def _run(args: list[str], cwd: Path, database_url: str | None) -> str:
    result = run_guarded(
        args,
        cwd=cwd,
        env=_environment(database_url),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("every_type.py", "fastagent.config.yaml"):
        shutil.copy(WORKFLOWS / name, tmp_path / name)
    return tmp_path


async def _count(database_url: str, row, *where) -> int:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            query = select(func.count()).select_from(row).where(*where)
            return int(await session.scalar(query) or 0)


async def test_an_unchanged_script_runs_the_same_with_and_without_a_database(
    database_url: str, workdir: Path
) -> None:
    command = [sys.executable, "every_type.py", json.dumps(MESSAGES)]
    plain = _run(command, workdir, None)

    # With a database, settings come from it: import the same config first.
    imported = await ainvoke(
        "config", "import", str(workdir / "fastagent.config.yaml"), "--database-url", database_url
    )
    assert imported.exit_code == 0, imported.output
    with_database = _run(command, workdir, database_url)
    assert with_database == plain

    assert await _count(database_url, AgentRow) == 17  # every decorated agent, recorded
    assert await _count(database_url, ExecutionRow, ExecutionRow.parent_execution_id.is_(None)) == 7
    assert await _count(database_url, SessionRow) == 1
    assert await _count(database_url, MessageRow) > 0


async def test_upstreams_cli_runs_the_same_with_and_without_a_database(
    database_url: str, workdir: Path
) -> None:
    command = [str(BIN / "fast-agent"), "go", "-m", "compatible?", "--model", "passthrough"]
    plain = _run(command, workdir, None)
    imported = await ainvoke(
        "config", "import", str(workdir / "fastagent.config.yaml"), "--database-url", database_url
    )
    assert imported.exit_code == 0, imported.output
    assert _run(command, workdir, database_url) == plain
    assert "compatible?" in plain
    assert await _count(database_url, MessageRow, MessageRow.role == "user") == 1


@pytest.mark.sqlite
def test_every_example_runs_offline_as_plain_upstream() -> None:
    expected = {
        "agent.py": "42",
        "chain.py": "Why keep agent history in a database?",
        "parallel.py": '<fastagent:response agent="skeptic">',
        "router.py": '"agent": "maths"',
        "orchestrator.py": "",
        "evaluator_optimizer.py": "A slogan for a database-backed agent framework.",
        "custom.py": "DATABASES ARE THE SOURCE OF TRUTH",
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, name],
            cwd=EXAMPLES,
            env=_environment(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in expected
    }
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=GUARD_S)
        assert process.returncode == 0, (name, stderr)
        assert expected[name] in stdout, (name, stdout)


async def test_a_database_url_in_fastagent_config_yaml_activates_the_database(
    database_url: str, workdir: Path
) -> None:
    imported = await ainvoke(
        "config", "import", str(workdir / "fastagent.config.yaml"), "--database-url", database_url
    )
    assert imported.exit_code == 0, imported.output
    with (workdir / "fastagent.config.yaml").open("a") as config:
        config.write(f"database:\n  url: {json.dumps(database_url)}\n")
    output = _run(
        [str(BIN / "fast-agent"), "go", "-m", "from yaml", "--model", "passthrough"], workdir, None
    )
    assert "from yaml" in output
    assert await _count(database_url, MessageRow, MessageRow.role == "user") == 1

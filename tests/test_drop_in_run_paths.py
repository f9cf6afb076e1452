"""Drop-in: every path through upstream's `run()` restores, records and stores; the settings
precedence (a named file, else the database, else the files upstream discovers); the session
line scripts and `go` print; the runtime patches come off after a run.

Scripts are unchanged upstream programs run as processes with FAST_AGENT_DATABASE_URL set,
against the real OpenAI provider code and the local fake model server, whose replies count
the user messages a request carried: "(user message 2)" proves the history came back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from mcp_agent.db.cli.app import hoist_go_options
from mcp_agent.db.models import ExecutionRow, MessageRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from mcp_agent.core.fastagent import FastAgent

    fast = FastAgent("run paths")

    @fast.agent(name="default", instruction="You answer.")
    async def main():
        async with fast.run() as app:
            await app.interactive()

    if __name__ == "__main__":
        asyncio.run(main())
    """
)

SESSION_LINE = re.compile(r"fast-agent-db: session (\S+) \(continue it with --session \1\)")

# One backend: the stores behind a drop-in run are the conformance suite's, and CI runs the
# upstream suite's drop-in on both backends.
pytestmark = [pytest.mark.slow, pytest.mark.one_backend("postgresql")]


@pytest.fixture
def fake_model():
    with FakeOpenAIServer() as server:
        yield server


def _environment(database_url: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAST_AGENT_")}
    environment["PYTHONPATH"] = str(ROOT)
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    environment["FAST_AGENT_DATABASE_URL"] = database_url
    return environment


def _run(args: list[str], cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=GUARD_S,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


async def _messages(database_url: str, session_id: str) -> list[MessageRow]:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            rows = await session.scalars(
                select(MessageRow)
                .where(MessageRow.session_id == session_id)
                .order_by(MessageRow.sequence)
            )
            return list(rows)


async def _executions(database_url: str, session_id: str) -> list[ExecutionRow]:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            rows = await session.scalars(
                select(ExecutionRow).where(ExecutionRow.session_id == session_id)
            )
            return list(rows)


async def _use_fake_model(database_url: str, fake_model: FakeOpenAIServer) -> None:
    for key, value in (("generic.base_url", fake_model.base_url), ("default_model", "passthrough")):
        result = await ainvoke("config", "set", key, value, "--database-url", database_url)
        assert result.exit_code == 0, result.output


async def test_message_prompt_file_and_quiet_restore_record_and_store(
    database_url: str, tmp_path: Path, fake_model: FakeOpenAIServer
) -> None:
    await _use_fake_model(database_url, fake_model)
    (tmp_path / "agent.py").write_text(SCRIPT)
    python = [sys.executable, "agent.py", "--model", "generic.fake-model"]

    first = _run([*python, "--message", "hello"], tmp_path, database_url)
    found = SESSION_LINE.search(first.stderr)
    assert found, first.stderr
    session_id = found.group(1)
    assert session_id not in first.stdout  # the session line is on stderr only

    second = _run(
        [*python, "--session", session_id, "--quiet", "--message", "again"], tmp_path, database_url
    )
    # --quiet prints the reply first (upstream adds its usage table) and no session line;
    # the reply shows the restored turn.
    assert second.stdout.strip().splitlines()[0] == "reply to: again (user message 2)"
    assert "fast-agent-db: session" not in second.stderr

    (tmp_path / "prompt.txt").write_text("---USER\nfrom a file\n")
    third = _run(
        [*python, "--session", session_id, "--quiet", "--prompt-file", "prompt.txt"],
        tmp_path,
        database_url,
    )
    assert third.stdout.strip().splitlines()[0] == "reply to: from a file (user message 3)"

    messages = await _messages(database_url, session_id)
    assert [message.role for message in messages] == ["user", "assistant"] * 3
    executions = await _executions(database_url, session_id)
    assert len(executions) == 3
    assert {execution.status for execution in executions} == {"completed"}
    assert {execution.settings_source for execution in executions} == {"database"}


async def test_server_mode_restores_records_and_stores(
    database_url: str, tmp_path: Path, fake_model: FakeOpenAIServer
) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    await _use_fake_model(database_url, fake_model)
    (tmp_path / "agent.py").write_text(SCRIPT)
    first = _run(
        [sys.executable, "agent.py", "--model", "generic.fake-model", "--message", "hello"],
        tmp_path,
        database_url,
    )
    session_id = SESSION_LINE.search(first.stderr).group(1)  # type: ignore[union-attr]

    server = StdioServerParameters(
        command=sys.executable,
        args=["agent.py", "--model", "generic.fake-model", "--session", session_id, "--server"]
        + ["--transport", "stdio", "--quiet"],
        env=_environment(database_url),
        cwd=str(tmp_path),
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        result = await client.call_tool("default_send", {"message": "over mcp"})
    assert result.content[0].text == "reply to: over mcp (user message 2)"

    messages = await _messages(database_url, session_id)
    assert len(messages) == 4


async def test_a_named_config_file_is_used_and_recorded(
    database_url: str, tmp_path: Path, fake_model: FakeOpenAIServer
) -> None:
    """The database holds other settings; the file the program names wins for its run."""
    result = await ainvoke(
        "config", "set", "default_model", "passthrough", "--database-url", database_url
    )
    assert result.exit_code == 0, result.output
    config = tmp_path / "named.yaml"
    config.write_text(
        f"default_model: generic.fake-model\ngeneric:\n  base_url: {fake_model.base_url}\n"
    )
    script = SCRIPT.replace(
        'FastAgent("run paths")', f'FastAgent("run paths", config_path="{config}")'
    )
    (tmp_path / "agent.py").write_text(script)

    run = _run([sys.executable, "agent.py", "--quiet", "--message", "hi"], tmp_path, database_url)
    assert run.stdout.strip().splitlines()[0] == "reply to: hi (user message 1)"

    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            sources = set(await session.scalars(select(ExecutionRow.settings_source)))
    assert sources == {f"file {config.resolve()}"}
    shown = await ainvoke("executions", "list", "--database-url", database_url)
    execution_id = re.search(r"[0-9a-f-]{36}", shown.output).group(0)  # type: ignore[union-attr]
    tree = await ainvoke("executions", "show", execution_id, "--database-url", database_url)
    assert f"settings: file {config.resolve()}" in tree.output.replace("\n", "")


async def test_an_empty_database_uses_the_discovered_files_and_says_so(
    database_url: str, tmp_path: Path, fake_model: FakeOpenAIServer
) -> None:
    (tmp_path / "fastagent.config.yaml").write_text(
        f"default_model: generic.fake-model\ngeneric:\n  base_url: {fake_model.base_url}\n"
    )
    (tmp_path / "agent.py").write_text(SCRIPT)
    run = _run([sys.executable, "agent.py", "--quiet", "--message", "hi"], tmp_path, database_url)
    assert run.stdout.strip().splitlines()[0] == "reply to: hi (user message 1)"
    assert "holds no settings" in run.stderr
    assert f"fast-agent-db config import {tmp_path / 'fastagent.config.yaml'}" in run.stderr

    # Once imported, the database is the source and no notice is printed.
    imported = await ainvoke(
        "config", "import", str(tmp_path / "fastagent.config.yaml"), "--database-url", database_url
    )
    assert imported.exit_code == 0, imported.output
    again = _run([sys.executable, "agent.py", "--quiet", "--message", "hi"], tmp_path, database_url)
    assert again.stdout.strip().splitlines()[0] == "reply to: hi (user message 1)"
    assert "holds no settings" not in again.stderr


async def test_go_takes_session_after_the_command_and_prints_it(
    database_url: str, tmp_path: Path, fake_model: FakeOpenAIServer
) -> None:
    await _use_fake_model(database_url, fake_model)
    cli = [str(BIN / "fast-agent-db")]
    first = _run(
        [*cli, "go", "--database-url", database_url, "--model", "generic.fake-model"]
        + ["-m", "hello"],
        tmp_path,
        database_url,
    )
    session_id = SESSION_LINE.search(first.stderr).group(1)  # type: ignore[union-attr]
    second = _run(
        [*cli, "go", "--session", session_id, "--model", "generic.fake-model", "-m", "again"],
        tmp_path,
        database_url,
    )
    assert "reply to: again (user message 2)" in second.stdout
    assert len(await _messages(database_url, session_id)) == 4


def test_go_options_are_hoisted_in_front_of_go() -> None:
    assert hoist_go_options(["go", "--session", "s1", "-m", "hi"]) == [
        "--session",
        "s1",
        "go",
        "-m",
        "hi",
    ]
    assert hoist_go_options(["--database-url", "u", "go", "--session=s1"]) == [
        "--database-url",
        "u",
        "--session=s1",
        "go",
    ]
    assert hoist_go_options(["sessions", "list"]) == ["sessions", "list"]


async def test_errors_about_settings_name_the_database_they_came_from(
    database_url: str, tmp_path: Path
) -> None:
    result = await ainvoke(
        "config", "set", "default_model", "passthrough", "--database-url", database_url
    )
    assert result.exit_code == 0, result.output
    script = SCRIPT.replace('instruction="You answer."', 'instruction="x", servers=["nosuch"]')
    (tmp_path / "agent.py").write_text(script)
    run = subprocess.run(
        [sys.executable, "agent.py", "--message", "hi"],
        cwd=tmp_path,
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=GUARD_S,
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 1, output
    assert "nosuch" in output
    assert "This run's settings come from the database" in output
    assert "fast-agent-db servers add" in output
    assert "fastagent.config.yaml" not in output

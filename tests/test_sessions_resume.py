"""Sessions outlive the process: resume with the same provider request, survive kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from mcp_agent.db.tour import calculator_server
from tests.support.cli import ainvoke
from tests.support.processes import GUARD_S, run_guarded, wait_guarded

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(calculator_server.__file__)
TURNS = ["hello", 'CALL calculator-add {"a": 2, "b": 3}', "and after the tool?"]

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_openai():
    with FakeOpenAIServer() as server:
        yield server


async def _configure(database_url: str, base_url: str, *, use_history: bool = True) -> None:
    for args in (
        ["config", "set", "default_model", "generic.fake-model"],
        ["config", "set", "generic.base_url", base_url],
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
        ["config", "set", "logger.show_tools", "false"],
        ["servers", "add", "calculator", "--command", sys.executable, "--arg", str(SERVER)],
    ):
        result = await ainvoke(*args, "--database-url", database_url)
        assert result.exit_code == 0, result.output
    bundle = Path(os.environ.get("TMPDIR", "/tmp")) / f"assistant-{os.getpid()}.yaml"
    bundle.write_text(
        "agents:\n  - {name: assistant, type: agent, servers: [calculator], "
        f"use_history: {str(use_history).lower()}}}\n"
    )
    result = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)
    assert result.exit_code == 0, result.output


def last_line(stdout: str) -> str:
    """A run's reply: its last line. Upstream may print before it on stdout (its chat display,
    or, when its event bus is stopped during a busy moment, "Error cancelling process task")."""
    lines = stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _cli(database_url: str, *args: str, wait: bool = True):
    command = [
        str(Path(sys.executable).parent / "fast-agent-db"),
        *args,
        "--database-url",
        database_url,
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not wait:
        return subprocess.Popen(
            command,
            env=environment,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    return run_guarded(
        command,
        env=environment,
        capture_output=True,
        text=True,
    )


def _upstream_requests(tmp_path: Path) -> list[dict]:
    """The same three turns in one process of plain upstream, against its own fake server."""
    with FakeOpenAIServer() as server:
        (tmp_path / "fastagent.config.yaml").write_text(
            textwrap.dedent(
                f"""
                default_model: generic.fake-model
                generic: {{base_url: "{server.base_url}"}}
                logger: {{type: none, progress_display: false, show_chat: false, show_tools: false}}
                mcp:
                  servers:
                    calculator: {{command: {sys.executable}, args: [{SERVER}]}}
                """
            )
        )
        (tmp_path / "agent.py").write_text(
            textwrap.dedent(
                f"""
                import asyncio
                from mcp_agent.core.fastagent import FastAgent
                fast = FastAgent("fast-agent-db", parse_cli_args=False)

                @fast.agent(name="assistant", servers=["calculator"])
                async def main():
                    async with fast.run() as app:
                        for turn in {TURNS!r}:
                            print(await app.assistant.send(turn))

                asyncio.run(main())
                """
            )
        )
        environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
        result = run_guarded(
            [sys.executable, "agent.py"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return list(server.requests)


async def test_a_new_process_continues_with_the_request_upstream_would_send(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    await _configure(database_url, fake_openai.base_url)
    replies = []
    for turn in TURNS:  # one process per turn: each resumes the session from the database
        result = _cli(database_url, "run", "assistant", "-m", turn, "--session", "resumed")
        assert result.returncode == 0, result.stderr
        replies.append(last_line(result.stdout))
    assert replies[2] == "reply to: and after the tool? (user message 3)"

    expected = _upstream_requests(tmp_path)
    assert len(fake_openai.requests) == len(expected) == 4  # the tool turn makes two calls
    # Request by request, byte for byte as JSON: the resumed history rebuilt the same request.
    assert json.dumps(fake_openai.requests, sort_keys=True) == json.dumps(expected, sort_keys=True)

    async with await DatabaseRuntime.open(database_url) as runtime:
        history = await SqlConversationStore(runtime).load("resumed", "assistant")
    assert [m.sequence for m in history] == [1, 2, 3, 4, 5, 6]
    assert [m.content.role for m in history] == ["user", "assistant"] * 3


async def test_kill_during_a_tool_call_then_resume(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    await _configure(database_url, fake_openai.base_url)
    assert (
        _cli(database_url, "run", "assistant", "-m", "before", "--session", "crash").returncode == 0
    )
    victim = _cli(
        database_url,
        "run",
        "assistant",
        "-m",
        'CALL calculator-sleep {"seconds": 60}',
        "--session",
        "crash",
        wait=False,
    )
    deadline = time.monotonic() + GUARD_S
    while len(fake_openai.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the second request is the one answered with the tool call
    time.sleep(1.5)  # the tool is now sleeping inside the MCP server
    os.killpg(victim.pid, signal.SIGKILL)
    wait_guarded(victim)

    result = _cli(database_url, "run", "assistant", "-m", "after", "--session", "crash")
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "reply to: after (user message 2)"
    messages = fake_openai.requests[-1]["messages"]
    assert not any(m.get("tool_calls") for m in messages), "no orphaned tool call was sent"
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]


async def test_use_history_false_sends_no_history_but_records_every_message(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    await _configure(database_url, fake_openai.base_url, use_history=False)
    for turn in ("one", "two"):
        result = _cli(database_url, "run", "assistant", "-m", turn, "--session", "stateless")
        assert result.returncode == 0, result.stderr
        assert last_line(result.stdout) == f"reply to: {turn} (user message 1)"
    async with await DatabaseRuntime.open(database_url) as runtime:
        history = await SqlConversationStore(runtime).load("stateless", "assistant")
    assert [m.content.first_text() for m in history][::2] == ["one", "two"]

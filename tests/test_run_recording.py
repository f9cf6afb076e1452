"""Recording a call: its end, its usage and its turn commit together, or not at all."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from mcp_agent.db.models import ExecutionRow, MessageRow
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

SCRIPT = """
import asyncio, sys
from mcp_agent.db import FastAgent
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime

URL = sys.argv[1]
fast = FastAgent("recording", parse_cli_args=False, database_url=URL, session_id="doomed")

@fast.agent(name="assistant", model="passthrough")
async def main():
    async with fast.run() as app:
        await app.assistant.send("first turn")
        llm = app.assistant._llm
        before = (len(llm._message_history), len(llm.history.get()))
        generate = llm.generate

        async def generate_while_the_session_is_deleted(*args, **kwargs):
            # Another process deletes the session while the call runs: its turn has nowhere
            # to go, so the call must fail and leave memory as it was before it.
            async with await DatabaseRuntime.open(URL) as runtime:
                await SqlConversationStore(runtime).delete("doomed")
            return await generate(*args, **kwargs)

        llm.generate = generate_while_the_session_is_deleted
        try:
            await app.assistant.send("second turn")
        except Exception as error:
            print("SEND FAILED:", type(error).__name__, error)
        after = (len(llm._message_history), len(llm.history.get()))
        print("MEMORY UNCHANGED:", before == after, before, after)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_turn_that_cannot_be_stored_fails_the_call_and_leaves_memory_unchanged(
    database_url: str, tmp_path: Path
) -> None:
    for args in (
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
    ):
        assert (await ainvoke(*args, "--database-url", database_url)).exit_code == 0
    (tmp_path / "recording.py").write_text(textwrap.dedent(SCRIPT))
    done = run_guarded(
        [sys.executable, "recording.py", database_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "SEND FAILED: SessionError no session 'doomed'" in done.stdout, done.stdout
    assert "MEMORY UNCHANGED: True" in done.stdout, done.stdout

    async with await DatabaseRuntime.open(database_url) as runtime, runtime.sessions() as session:
        calls = (
            await session.execute(
                select(ExecutionRow.status, ExecutionRow.error).order_by(ExecutionRow.started_at)
            )
        ).all()
        messages = await session.scalar(select(MessageRow.message_id).limit(1))
    # The first call completed (its turn went with the deleted session); the second is
    # recorded as failed, naming why, and no message of it was stored.
    assert [status for status, _ in calls] == ["completed", "failed"]
    assert "its turn could not be stored" in calls[1][1]
    assert "no session 'doomed'" in calls[1][1]
    assert messages is None

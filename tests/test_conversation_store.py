"""The SQL conversation store beyond its protocol: branches, deletion, two processes appending
at once; and the codec's escape. What every conversation store does (fidelity, sequences,
sessions) is in tests/conformance/test_conversations.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SessionError, SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def store(database_url: str):
    runtime = await DatabaseRuntime.open(database_url)
    yield SqlConversationStore(runtime)
    await runtime.close()


#: Text that stresses the escape: surrogates (no UTF-8 form), NUL, the escape character itself
#: and what follows it in an escape.
unstorable_texts = st.text(
    st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from("\x00\ue000u0d"))
)


@given(
    st.recursive(
        unstorable_texts,
        lambda inner: st.lists(inner) | st.dictionaries(unstorable_texts, inner),
    )
)
def test_the_escape_is_lossless_and_storable(value) -> None:
    from mcp_agent.db.conversations.codec import escape_unstorable, unescape_unstorable

    def strings(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, entry in node.items():
                yield key
                yield from strings(entry)
        elif isinstance(node, list):
            for entry in node:
                yield from strings(entry)

    escaped = escape_unstorable(value)
    for text in strings(escaped):
        assert "\x00" not in text
        text.encode("utf-8")  # strict: no surrogate is left
    assert unescape_unstorable(escaped) == value


@pytest.mark.slow
async def test_two_processes_appending_at_once_keep_the_sequence(database_url: str) -> None:
    per_writer = 40
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.append_turns",
                database_url,
                "busy",
                "a",
                writer,
                str(per_writer),
            ],
            cwd=ROOT,
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in ("left", "right")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    async with await DatabaseRuntime.open(database_url) as runtime:
        history = await SqlConversationStore(runtime).load("busy", "a")
    assert [m.sequence for m in history] == list(range(1, 2 * per_writer + 1))
    texts = [m.content.first_text() for m in history]
    for writer in ("left", "right"):
        mine = [text for text in texts if text.startswith(writer)]
        assert mine == [f"{writer}-{n}" for n in range(per_writer)], "each writer's order kept"


async def test_fork_shares_history_without_copying_and_delete_respects_branches(
    store: SqlConversationStore,
) -> None:
    await store.ensure_session("main")
    for n in range(1, 5):
        await store.append("main", "a", [NewMessage(Prompt.user(f"a{n}"))])
        await store.append("main", "b", [NewMessage(Prompt.user(f"b{n}"))])
    with pytest.raises(SessionError, match="name one with --agent"):
        await store.fork("main", at_sequence=2)
    branch = await store.fork("main", at_sequence=2, agent_name="a", new_session_id="branch")
    assert branch == "branch"
    assert [m.content.first_text() for m in await store.load("branch", "a")] == ["a1", "a2"]
    # Every agent is cut at the same point in the conversation.
    assert [m.content.first_text() for m in await store.load("branch", "b")] == ["b1"]
    assert await store.append("branch", "a", [NewMessage(Prompt.user("a3'"))]) == [3]
    assert [m.content.first_text() for m in await store.load("main", "a")] == [
        "a1",
        "a2",
        "a3",
        "a4",
    ]
    grandchild = await store.fork("branch", at_sequence=3, agent_name="a")
    assert [m.content.first_text() for m in await store.load(grandchild, "a")] == [
        "a1",
        "a2",
        "a3'",
    ]

    with pytest.raises(SessionError, match="branches share its history: branch"):
        await store.delete("main")
    with pytest.raises(SessionError, match="has no message 9"):
        await store.fork("main", at_sequence=9, agent_name="a")
    await store.delete(grandchild)
    assert await store.delete("branch") == 1
    assert await store.delete("main") == 8

"""The conversation store: fidelity, ordering, concurrency, branches, deletion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from mcp_agent.core.prompt import Prompt
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.in_memory import InMemoryConversationStore
from mcp_agent.db.conversations.sql import SessionError, SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime

ROOT = Path(__file__).resolve().parents[1]

texts = st.text(min_size=0, max_size=200)
base64_blobs = st.binary(min_size=1, max_size=64).map(
    lambda data: __import__("base64").b64encode(data).decode()
)
uris = st.from_regex(r"file:///[a-z0-9_/]{1,20}\.(txt|bin)", fullmatch=True)
content_parts = st.one_of(
    texts.map(lambda text: TextContent(type="text", text=text)),
    st.builds(
        lambda data, mime: ImageContent(type="image", data=data, mimeType=mime),
        base64_blobs,
        st.sampled_from(["image/png", "image/jpeg"]),
    ),
    st.builds(
        lambda uri, text: EmbeddedResource(
            type="resource",
            resource=TextResourceContents(uri=uri, text=text, mimeType="text/plain"),
        ),
        uris,
        texts,
    ),
    st.builds(
        lambda uri, blob: EmbeddedResource(
            type="resource",
            resource=BlobResourceContents(uri=uri, blob=blob, mimeType="application/octet-stream"),
        ),
        uris,
        base64_blobs,
    ),
)
multipart_messages = st.builds(
    lambda role, parts: PromptMessageMultipart(role=role, content=parts),
    st.sampled_from(["user", "assistant"]),
    st.lists(content_parts, min_size=1, max_size=4),
)


@pytest.fixture
async def store(database_url: str):
    runtime = await DatabaseRuntime.open(database_url)
    yield SqlConversationStore(runtime)
    await runtime.close()


async def test_any_multipart_message_is_stored_and_loaded_equal(
    store: SqlConversationStore,
) -> None:
    await store.ensure_session("fidelity")
    collected: list[PromptMessageMultipart] = []

    # Hypothesis drives a sync test function; each example is stored on the async store.
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(multipart_messages, min_size=1, max_size=3))
    def example(messages: list[PromptMessageMultipart]) -> None:
        collected.extend(messages)

    example()
    # Always, not only when hypothesis happens to draw them: U+0000 and lone surrogates (what a
    # byte that is not UTF-8 on the command line becomes), which the backends cannot store as
    # they are, and the codec's escape character, which must survive too.
    collected.extend(
        Prompt.user(text)
        for text in ("nul:\x00:", "\ue000", "\ue0000\x00\ue000", "caf\udce9", "\ue000udce9")
    )
    for message in collected:
        await store.append("fidelity", "a", [NewMessage(content=message)])
    loaded = [stored.content for stored in await store.load("fidelity", "a")]
    assert loaded == collected


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


async def test_tool_content_and_provider_objects_round_trip(store: SqlConversationStore) -> None:
    from openai.types.chat import ChatCompletionMessage

    await store.ensure_session("s")
    tool_result = CallToolResult(content=[TextContent(type="text", text="42 ✓")], isError=False)
    assistant = PromptMessageMultipart(role="assistant", content=tool_result.content)
    provider = [
        {"role": "user", "content": "add"},
        ChatCompletionMessage(role="assistant", content="", tool_calls=None),
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "42",
            "cache_control": {"type": "ephemeral"},
        },
    ]
    await store.append(
        "s",
        "a",
        [
            NewMessage(content=Prompt.user("add")),
            NewMessage(content=assistant, provider_messages=provider),
        ],
    )
    first, second = await store.load("s", "a")
    assert second.content == assistant
    assert second.provider_messages[0] == provider[0]
    assert isinstance(second.provider_messages[1], ChatCompletionMessage)
    assert second.provider_messages[1] == provider[1]
    assert "cache_control" not in second.provider_messages[2]  # stale cache markers dropped
    assert first.provider_messages is None


async def test_sequences_are_per_agent_and_gap_free(store: SqlConversationStore) -> None:
    await store.ensure_session("s")
    assert await store.append(
        "s", "a", [NewMessage(Prompt.user("1")), NewMessage(Prompt.assistant("2"))]
    ) == [1, 2]
    assert await store.append("s", "b", [NewMessage(Prompt.user("x"))]) == [1]
    assert await store.append("s", "a", [NewMessage(Prompt.user("3"))]) == [3]
    assert [m.sequence for m in await store.load("s", "a")] == [1, 2, 3]
    with pytest.raises(SessionError, match="no session 'ghost'"):
        await store.append("ghost", "a", [NewMessage(Prompt.user("x"))])


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


async def test_the_in_memory_store_behaves_alike() -> None:
    store = InMemoryConversationStore()
    await store.ensure_session("s")
    assert await store.append(
        "s", "a", [NewMessage(Prompt.user("1")), NewMessage(Prompt.assistant("2"))]
    ) == [1, 2]
    assert [m.content.first_text() for m in await store.load("s", "a")] == ["1", "2"]

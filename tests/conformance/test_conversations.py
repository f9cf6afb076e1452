"""ConversationStore: fidelity of what is stored, per-agent gap-free sequences, sessions.

SQL-only and kept in tests/test_conversation_store.py: branches (`fork`) and `delete`, which
are administration of the SQL store and not part of the protocol, two processes appending at
once, and the codec's escape on its own."""

from __future__ import annotations

import base64

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
from mcp_agent.db.errors import SessionError
from tests.conformance.stores import Stores

texts = st.text(min_size=0, max_size=200)
base64_blobs = st.binary(min_size=1, max_size=64).map(lambda data: base64.b64encode(data).decode())
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


async def test_any_multipart_message_is_stored_and_loaded_equal(stores: Stores) -> None:
    store = stores.conversations
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


async def test_tool_content_and_provider_objects_round_trip(stores: Stores) -> None:
    from openai.types.chat import ChatCompletionMessage

    store = stores.conversations
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
            NewMessage(
                content=assistant, provider_messages=provider, provider="openai", model="gpt-x"
            ),
        ],
    )
    first, second = await store.load("s", "a")
    assert second.content == assistant
    assert second.provider_messages[0] == provider[0]
    assert isinstance(second.provider_messages[1], ChatCompletionMessage)
    assert second.provider_messages[1] == provider[1]
    assert "cache_control" not in second.provider_messages[2]  # stale cache markers dropped
    assert first.provider_messages is None
    assert (second.provider, second.model) == ("openai", "gpt-x")
    assert (first.provider, first.model) == (None, None)
    assert (second.session_id, second.agent_name) == ("s", "a")
    assert first.message_id < second.message_id
    assert second.created_at.tzinfo is not None


async def test_sequences_are_per_agent_and_gap_free(stores: Stores) -> None:
    store = stores.conversations
    await store.ensure_session("s")
    assert await store.append(
        "s", "a", [NewMessage(Prompt.user("1")), NewMessage(Prompt.assistant("2"))]
    ) == [1, 2]
    assert [m.content.first_text() for m in await store.load("s", "a")] == ["1", "2"]
    assert await store.append("s", "b", [NewMessage(Prompt.user("x"))]) == [1]
    assert await store.append("s", "a", [NewMessage(Prompt.user("3"))]) == [3]
    assert [m.sequence for m in await store.load("s", "a")] == [1, 2, 3]
    assert await store.append("s", "a", []) == [], "an empty turn takes no sequence"
    with pytest.raises(SessionError, match="no session 'ghost'"):
        await store.append("ghost", "a", [NewMessage(Prompt.user("x"))])


async def test_sessions_keep_their_histories_apart(stores: Stores) -> None:
    store = stores.conversations
    for session_id in ("left", "right"):
        await store.ensure_session(session_id)
    await store.append("left", "a", [NewMessage(Prompt.user("l1"))])
    assert await store.append("right", "a", [NewMessage(Prompt.user("r1"))]) == [1]
    assert [m.content.first_text() for m in await store.load("left", "a")] == ["l1"]
    assert [m.content.first_text() for m in await store.load("right", "a")] == ["r1"]
    assert await store.load("left", "nobody") == []
    assert await store.load("ghost", "a") == []


async def test_ensure_session_creates_once(stores: Stores) -> None:
    store = stores.conversations
    assert await store.ensure_session("s", app_name="app") is True
    assert await store.ensure_session("s") is False
    await store.append("s", "a", [NewMessage(Prompt.user("kept"))])
    assert await store.ensure_session("s") is False
    assert [m.content.first_text() for m in await store.load("s", "a")] == ["kept"]


async def test_only_an_empty_session_is_discarded(stores: Stores) -> None:
    store = stores.conversations
    await store.ensure_session("empty")
    await store.ensure_session("used")
    await store.append("used", "a", [NewMessage(Prompt.user("x"))])

    assert await store.discard_if_empty("used") is False
    assert await store.discard_if_empty("ghost") is False
    assert await store.discard_if_empty("empty") is True
    assert await store.discard_if_empty("empty") is False, "gone already"
    with pytest.raises(SessionError, match="no session 'empty'"):
        await store.append("empty", "a", [NewMessage(Prompt.user("x"))])
    assert await store.ensure_session("empty") is True
    assert len(await store.load("used", "a")) == 1

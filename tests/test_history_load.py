"""Loading a history: the aggregated, chunked read gives exactly what a row per message gives.

`SqlConversationStore.load` reads a session's messages as a few aggregated documents, a chunk
after another, and decodes them in bulk. The reference here is the plain path it falls back to
(`_load_row_by_row`: a row per message, each decoded on its own), which every field of every
message is compared with, on both backends.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import (
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from mcp_agent.core.prompt import Prompt
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart
from pydantic import ValidationError
from sqlalchemy import text

from mcp_agent.db.conversations import sql
from mcp_agent.db.conversations.base import NewMessage, StoredMessage
from mcp_agent.db.conversations.codec import (
    RECORD_SEPARATOR,
    _tagged_multipart_class,
    decode_multipart_json,
    decode_multipart_records,
    encode_multipart,
)
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import sqlite_file, to_async_url

PARTS = [
    TextContent(type="text", text="plain"),
    ImageContent(type="image", data="iVBORw0KGgo=", mimeType="image/png"),
    EmbeddedResource(
        type="resource",
        resource=TextResourceContents(uri="file:///notes.txt", text="notes", mimeType="text/plain"),
    ),
    EmbeddedResource(
        type="resource",
        resource=BlobResourceContents(
            uri="file:///data.bin", blob="AAEC", mimeType="application/octet-stream"
        ),
    ),
]
#: Text the backends cannot store as it is (see codec), and the escape character itself.
ODD = ["nul:\x00:", "caf\udce9", "\ue000", "\ue000udce9", "\ud83d\ude00"]


def _message(number: int) -> NewMessage:
    """A varied message: each content part class, provider items or none, SDK objects."""
    from openai.types.chat import ChatCompletionMessage

    kind = number % 5
    if kind == 0:
        return NewMessage(content=Prompt.user(f"question {number}"))
    if kind == 1:
        return NewMessage(
            content=Prompt.assistant(f"answer {number}"),
            provider_messages=[
                {"role": "user", "content": f"question {number - 1}"},
                {"role": "assistant", "content": f"answer {number}", "refusal": None},
            ],
            provider="openai",
            model="gpt-4.1-mini",
        )
    if kind == 2:
        parts = [PARTS[number % len(PARTS)], TextContent(type="text", text=f"and {number}")]
        return NewMessage(content=PromptMessageMultipart(role="user", content=parts))
    if kind == 3:
        return NewMessage(
            content=Prompt.assistant(f"tool result {number} ✓"),
            provider_messages=[ChatCompletionMessage(role="assistant", content=f"{number}")],
            provider="openai",
            model=None,
        )
    return NewMessage(content=Prompt.user(f"ünïcödé {number} 😀"), provider="anthropic")


async def _reference(runtime: DatabaseRuntime, session_id: str, agent: str) -> list[StoredMessage]:
    async with runtime.engine.connect() as connection:
        return await sql._load_row_by_row(connection, runtime.dialect, session_id, agent)


async def _loads_as_reference(
    store: SqlConversationStore, runtime: DatabaseRuntime, session_id: str, agent: str
) -> list[StoredMessage]:
    loaded = await store.load(session_id, agent)
    expected = await _reference(runtime, session_id, agent)
    assert loaded == expected
    for got, want in zip(loaded, expected, strict=True):
        # Equal is not enough for the objects a caller holds: the same types, the same state.
        assert type(got.content) is PromptMessageMultipart
        assert [type(part) for part in got.content.content] == [
            type(part) for part in want.content.content
        ]
        assert got.content.__dict__ == want.content.__dict__
        assert got.content.__pydantic_fields_set__ == want.content.__pydantic_fields_set__
        assert got.created_at.tzinfo is UTC and got.created_at == want.created_at
        assert got.provider_messages == want.provider_messages
        assert [type(item) for item in got.provider_messages or []] == [
            type(item) for item in want.provider_messages or []
        ]
    return loaded


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 2, 4, 5, 5, ... messages on both backends: every history below crosses
    several of them."""
    monkeypatch.setattr(sql, "CHUNKS", dict.fromkeys(sql.CHUNKS, (2, 5)))


async def test_a_missing_or_empty_session_loads_nothing(runtime: DatabaseRuntime) -> None:
    store = SqlConversationStore(runtime)
    assert await store.load("ghost", "a") == []
    await store.ensure_session("empty")
    assert await store.load("empty", "a") == []
    await store.append("empty", "other", [NewMessage(Prompt.user("not a's"))])
    assert await store.load("empty", "a") == []


@pytest.mark.parametrize("count", [1, 2, 3, 6, 7, 23])
async def test_a_history_in_chunks_loads_as_row_by_row(
    runtime: DatabaseRuntime, small_chunks: None, count: int
) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session("s")
    messages = [_message(number) for number in range(count)]
    await store.append("s", "a", messages[: count // 2])
    await store.append("s", "b", [_message(99)])  # another agent's rows, between a's
    await store.append("s", "a", messages[count // 2 :])
    loaded = await _loads_as_reference(store, runtime, "s", "a")
    assert [m.sequence for m in loaded] == list(range(1, count + 1))
    assert [m.content for m in loaded] == [m.content for m in messages]
    assert {m.session_id for m in loaded} == {"s"} and {m.agent_name for m in loaded} == {"a"}


async def test_the_default_chunks_load_a_longer_history(runtime: DatabaseRuntime) -> None:
    first, _ = sql.CHUNKS["postgresql"]
    count = first + 2 * first + 5  # three statements on PostgreSQL, the last one short
    store = SqlConversationStore(runtime)
    await store.ensure_session("long")
    await store.append("long", "a", [_message(number) for number in range(count)])
    loaded = await _loads_as_reference(store, runtime, "long", "a")
    assert [m.sequence for m in loaded] == list(range(1, count + 1))


async def test_odd_text_among_plain_messages_loads_exactly(
    runtime: DatabaseRuntime, small_chunks: None
) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session("odd")
    texts = [f"plain {n}" for n in range(4)] + ODD + [f"plain {n}" for n in range(4, 8)]
    for value in texts:
        await store.append(
            "odd",
            "a",
            [NewMessage(Prompt.user(value), provider_messages=[{"content": value, value: 1}])],
        )
    loaded = await _loads_as_reference(store, runtime, "odd", "a")
    assert [m.content.first_text() for m in loaded] == texts
    assert [m.provider_messages for m in loaded] == [[{"content": v, v: 1}] for v in texts]


async def test_a_branch_sees_its_ancestors_up_to_the_branch_point(
    runtime: DatabaseRuntime, small_chunks: None
) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session("root")
    for number in range(1, 8):
        await store.append("root", "a", [_message(number)])
        await store.append("root", "b", [NewMessage(Prompt.user(f"b{number}"))])
    child = await store.fork("root", at_sequence=5, agent_name="a", new_session_id="child")
    await store.append("root", "a", [NewMessage(Prompt.user("root only"))])
    for number in range(3):
        await store.append(child, "a", [NewMessage(Prompt.user(f"child {number}"))])
    grandchild = await store.fork(child, at_sequence=6, agent_name="a")
    await store.append(grandchild, "a", [NewMessage(Prompt.user("grandchild"))])
    await store.append(grandchild, "b", [NewMessage(Prompt.user("grandchild b"))])

    root = await _loads_as_reference(store, runtime, "root", "a")
    assert [m.sequence for m in root] == list(range(1, 9))
    loaded = await _loads_as_reference(store, runtime, child, "a")
    assert [(m.session_id, m.sequence) for m in loaded] == [("root", n) for n in range(1, 6)] + [
        ("child", n) for n in range(6, 9)
    ]
    assert loaded[:5] == root[:5]
    # Every agent is cut at the same point in the conversation.
    branch_b = await _loads_as_reference(store, runtime, child, "b")
    assert [m.content.first_text() for m in branch_b] == [f"b{n}" for n in range(1, 5)]
    deepest = await _loads_as_reference(store, runtime, grandchild, "a")
    assert [m.content.first_text() for m in deepest][5:] == ["child 0", "grandchild"]
    assert deepest[:6] == loaded[:6]
    deepest_b = await _loads_as_reference(store, runtime, grandchild, "b")
    assert [m.content.first_text() for m in deepest_b] == [
        *(f"b{n}" for n in range(1, 5)),
        "grandchild b",
    ]
    # A branch without messages of its own (yet) sees the inherited ones only.
    empty = await store.fork("root", at_sequence=2, agent_name="a")
    assert [m.sequence for m in await _loads_as_reference(store, runtime, empty, "a")] == [1, 2]


async def test_a_failed_decode_leaves_the_connections_usable(
    runtime: DatabaseRuntime, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session("s")
    await store.append("s", "a", [_message(number) for number in range(12)])
    decoded = sql._decoded

    def failing(*arguments: object) -> list[StoredMessage]:
        raise RuntimeError("decoding failed")

    monkeypatch.setattr(sql, "_decoded", failing)
    with pytest.raises(RuntimeError, match="decoding failed"):
        await store.load("s", "a")  # with the next chunk's statement in flight
    monkeypatch.setattr(sql, "_decoded", decoded)
    assert len(await _loads_as_reference(store, runtime, "s", "a")) == 12
    await store.append("s", "a", [_message(12)])
    assert len(await store.load("s", "a")) == 13


async def test_a_history_too_large_for_one_value_is_read_row_by_row(
    runtime: DatabaseRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both backends refuse a value above 1 GB; such a history falls back to a row per
    message. The statement here makes the backend raise that very error."""
    store = SqlConversationStore(runtime)
    await store.ensure_session("big")
    await store.append("big", "a", [_message(number) for number in range(6)])
    too_long = (
        "SELECT repeat('x', 1073741824)"
        if runtime.dialect == "postgresql"
        else "SELECT zeroblob(2000000000)"
    )
    monkeypatch.setattr(sql, "_own_history", lambda dialect: text(too_long))
    loaded = await store.load("big", "a")
    assert loaded == await _reference(runtime, "big", "a")
    assert len(loaded) == 6


@pytest.mark.sqlite
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_created_at_in_other_forms_sqlite_accepts(database_url: str) -> None:
    """SQLite keeps created_at as text: rows written by other tools may lack the fraction."""
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("s")
        await store.append("s", "a", [_message(n) for n in range(3)])
    path = sqlite_file(to_async_url(database_url))
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE fa_messages SET created_at = '2026-01-02 03:04:05' WHERE sequence = 2"
        )
    async with await DatabaseRuntime.open(database_url) as runtime:
        loaded = await _loads_as_reference(SqlConversationStore(runtime), runtime, "s", "a")
    assert loaded[1].created_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_the_documents_are_put_back_in_order_when_a_backend_does_not_keep_it() -> None:
    """Neither backend promises to aggregate in the subquery's order; aligned documents in
    another order give the same messages."""
    messages = [Prompt.user(f"m{n}") for n in range(5)]
    order = [3, 0, 4, 1, 2]
    contents = RECORD_SEPARATOR.join(json.dumps(encode_multipart(messages[n])) for n in order)
    providers = json.dumps([[{"n": n}] for n in order])
    columns = [
        [100 + n for n in order],  # message_ids
        [n + 1 for n in order],  # sequences
        ["p"] * 5,  # provider names
        [None] * 5,  # models
        [f"2026-01-01 00:00:0{n}.000000" for n in order],  # created
    ]
    loaded = sql._decoded("a", "s", contents, providers, columns)
    assert [m.sequence for m in loaded] == [1, 2, 3, 4, 5]
    assert [m.content for m in loaded] == messages
    assert [m.message_id for m in loaded] == [100, 101, 102, 103, 104]
    assert [m.provider_messages for m in loaded] == [[{"n": n}] for n in range(5)]
    assert [m.created_at.second for m in loaded] == [0, 1, 2, 3, 4]


texts = st.text(max_size=40)
parts = st.one_of(
    texts.map(lambda value: TextContent(type="text", text=value)),
    st.builds(
        lambda value: ImageContent(type="image", data="AA==", mimeType=value),
        st.sampled_from(["image/png", "image/jpeg"]),
    ),
    st.builds(
        lambda uri, value: EmbeddedResource(
            type="resource", resource=TextResourceContents(uri=uri, text=value)
        ),
        st.sampled_from(["file:///a.txt", "https://example.com/b"]),
        texts,
    ),
    st.builds(
        lambda value: EmbeddedResource(
            type="resource",
            resource=BlobResourceContents(uri="file:///c.bin", blob=value, mimeType="x/y"),
        ),
        st.sampled_from(["AA==", "AAEC"]),
    ),
)
multiparts = st.builds(
    PromptMessageMultipart,
    role=st.sampled_from(["user", "assistant"]),
    content=st.lists(parts, min_size=1, max_size=4),
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(multiparts, min_size=1, max_size=6))
def test_decoding_many_is_decoding_each_with_upstreams_validator(
    messages: list[PromptMessageMultipart],
) -> None:
    stored = [json.dumps(encode_multipart(message)) for message in messages]
    decoded = decode_multipart_records(RECORD_SEPARATOR.join(stored))
    expected = [decode_multipart_json(one) for one in stored]
    assert decoded == expected == messages
    for got, want in zip(decoded, expected, strict=True):
        assert type(got) is PromptMessageMultipart
        assert got.__dict__ == want.__dict__
        assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__
        assert got.__pydantic_extra__ == want.__pydantic_extra__
        assert got.__pydantic_private__ == want.__pydantic_private__
        assert [type(part) for part in got.content] == [type(part) for part in want.content]
        assert got.model_dump(by_alias=True) == want.model_dump(by_alias=True)


def test_a_message_upstream_refuses_is_refused_with_upstreams_error() -> None:
    assert _tagged_multipart_class() is not None, "the fast validator is in use"
    good = json.dumps(encode_multipart(Prompt.user("fine")))
    bad = json.dumps({"role": "user", "content": [{"type": "video", "text": "x"}]})
    with pytest.raises(ValidationError) as raised:
        decode_multipart_records(RECORD_SEPARATOR.join([good, bad]))
    with pytest.raises(ValidationError) as upstream:
        PromptMessageMultipart.model_validate_json(bad)
    assert raised.value.errors() == upstream.value.errors()
    assert raised.value.title == "PromptMessageMultipart"

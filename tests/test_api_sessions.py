"""/v1/sessions through the API on both backends: create, list (cursor pages, filters), get,
messages (pages of both histories), fork, export, delete; bad input is a problem naming the
field, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from mcp_agent.core.prompt import Prompt
from sqlalchemy import func, select

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.models import MessageRow, SessionRow
from tests.support.api import ApiClient, api_client, assert_problem


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url) as client:
        yield client


def _tool_turn(number: int) -> list[NewMessage]:
    """A user message and the reply of a turn that called a tool, with the provider-native
    messages such a turn stores (an OpenAI SDK object among them)."""
    from openai.types.chat import ChatCompletionMessage
    from openai.types.chat.chat_completion_message_tool_call import (
        ChatCompletionMessageToolCall,
        Function,
    )

    call = ChatCompletionMessageToolCall(
        id=f"call_{number}",
        type="function",
        function=Function(name="calculator-add", arguments='{"a": 2, "b": 3}'),
    )
    return [
        NewMessage(
            content=Prompt.user(f"question {number}"),
            provider_messages=[{"role": "user", "content": f"question {number}"}],
            provider="openai",
            model="gpt-4.1-mini",
        ),
        NewMessage(
            content=Prompt.assistant(f"answer {number}"),
            provider_messages=[
                ChatCompletionMessage(role="assistant", content=None, tool_calls=[call]),
                {"role": "tool", "tool_call_id": f"call_{number}", "content": "5"},
                {"role": "assistant", "content": f"answer {number}"},
            ],
            provider="openai",
            model="gpt-4.1-mini",
        ),
    ]


async def _seed(api: ApiClient, session_id: str = "talk", *, turns: int = 3) -> None:
    store = SqlConversationStore(api.runtime)
    await store.ensure_session(session_id)
    for number in range(turns):
        await store.append(session_id, "assistant", _tool_turn(number))
    await store.append(session_id, "critic", [NewMessage(content=Prompt.user("review it"))])


async def _counts(api: ApiClient) -> tuple[int, int]:
    async with api.runtime.sessions() as session:
        sessions = await session.scalar(select(func.count()).select_from(SessionRow))
        messages = await session.scalar(select(func.count()).select_from(MessageRow))
    return int(sessions or 0), int(messages or 0)


async def _all_pages(api: ApiClient, path: str, **params: object) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


# ---------------------------------------------------------------------------------------------
# Create, list, get


async def test_create_list_and_get(api: ApiClient) -> None:
    created = await api.post("/v1/sessions", json={})
    assert created.status_code == 201, created.text
    generated = created.json()["session_id"]
    assert len(generated) == 16 and created.json()["agents"] == []
    named = await api.post("/v1/sessions", json={"session_id": "mine", "app_name": "tests"})
    assert named.status_code == 201 and named.json()["session_id"] == "mine"
    await _seed(api, "talk")

    listed = (await api.get("/v1/sessions")).json()
    # Newest activity first: talk got messages last.
    assert [item["session_id"] for item in listed["items"]][0] == "talk"
    assert {item["session_id"] for item in listed["items"]} == {generated, "mine", "talk"}
    talk = next(item for item in listed["items"] if item["session_id"] == "talk")
    assert talk["message_counts"] == {"assistant": 6, "critic": 1}

    detail = (await api.get("/v1/sessions/talk")).json()
    assert detail["agents"] == ["assistant", "critic"]
    assert detail["message_counts"] == {"assistant": 6, "critic": 1}
    assert detail["parent_session_id"] is None

    assert_problem(await api.get("/v1/sessions/nosuch"), 404)
    # An existing id is a conflict, and changes nothing.
    before = await _counts(api)
    assert_problem(await api.post("/v1/sessions", json={"session_id": "mine"}), 409)
    assert await _counts(api) == before


@pytest.mark.parametrize("order", ["updated", "created"])
async def test_session_pages_cover_every_session_once(api: ApiClient, order: str) -> None:
    store = SqlConversationStore(api.runtime)
    for number in range(7):
        await store.ensure_session(f"s{number}")
    seen = await _all_pages(api, "/v1/sessions", limit=2, order=order)
    assert sorted(item["session_id"] for item in seen) == [f"s{n}" for n in range(7)]
    key = "updated_at" if order == "updated" else "created_at"
    times = [item[key] for item in seen]
    assert times == sorted(times, reverse=True)

    # Sessions created while paging neither repeat nor shift the pages after the cursor.
    first = (await api.get("/v1/sessions", params={"limit": 3, "order": order})).json()
    await store.ensure_session("newcomer")
    rest = await _all_pages(api, "/v1/sessions", limit=3, order=order, cursor=first["next_cursor"])
    ids = [item["session_id"] for item in first["items"] + rest]
    assert len(ids) == len(set(ids)) == 7 and "newcomer" not in ids


async def test_session_filters(api: ApiClient) -> None:
    await _seed(api, "talk")
    store = SqlConversationStore(api.runtime)
    await store.ensure_session("quiet")
    branch = await store.fork("talk", at_sequence=2, agent_name="assistant", new_session_id="b")
    by_agent = (await api.get("/v1/sessions", params={"agent": "critic"})).json()["items"]
    assert [item["session_id"] for item in by_agent] == ["talk"]
    branches = (await api.get("/v1/sessions", params={"parent": "talk"})).json()["items"]
    assert [item["session_id"] for item in branches] == [branch]
    assert branches[0]["branch_point_message_id"] is not None


# ---------------------------------------------------------------------------------------------
# Messages


async def test_messages_come_in_pages_with_both_histories(api: ApiClient) -> None:
    await _seed(api, "talk")
    messages = await _all_pages(api, "/v1/sessions/talk/messages", agent="assistant", limit=4)
    assert [m["sequence"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    first, reply = messages[0], messages[1]
    assert first["content"]["role"] == "user"
    assert first["content"]["content"][0] == {
        **first["content"]["content"][0],
        "type": "text",
        "text": "question 0",
    }
    assert first["provider_messages"] == [{"role": "user", "content": "question 0"}]
    assert first["agent_name"] == "assistant" and first["session_id"] == "talk"
    assert reply["content"]["content"][0]["text"] == "answer 0"
    # The SDK object is shown as the provider's JSON: the tool call and its result.
    call, result, final = reply["provider_messages"]
    assert call["role"] == "assistant"
    assert call["tool_calls"][0]["function"] == {
        "name": "calculator-add",
        "arguments": '{"a": 2, "b": 3}',
    }
    assert result == {"role": "tool", "tool_call_id": "call_0", "content": "5"}
    assert final["content"] == "answer 0"
    assert reply["provider"] == "openai" and reply["model"] == "gpt-4.1-mini"
    assert "__fast_agent_db_type__" not in json.dumps(messages)

    # A session whose messages are one agent's needs no agent named.
    store = SqlConversationStore(api.runtime)
    await store.ensure_session("solo")
    await store.append("solo", "assistant", _tool_turn(0))
    solo = (await api.get("/v1/sessions/solo/messages")).json()
    assert [m["sequence"] for m in solo["items"]] == [1, 2] and solo["next_cursor"] is None
    await store.ensure_session("empty")
    assert (await api.get("/v1/sessions/empty/messages")).json() == {
        "items": [],
        "next_cursor": None,
    }


async def test_messages_come_back_exactly_as_they_were_stored(api: ApiClient) -> None:
    """Characters the database cannot hold as they are (stored escaped) come back as sent,
    in both histories, and SDK objects come back as their JSON."""
    from openai.types.chat import ChatCompletionMessage

    odd = "NUL \x00, lone surrogate \ud800, private use \ue000u0041, emoji \U0001f600"
    store = SqlConversationStore(api.runtime)
    await store.ensure_session("odd")
    await store.append(
        "odd",
        "assistant",
        [
            NewMessage(
                content=Prompt.assistant(odd),
                provider_messages=[
                    ChatCompletionMessage(role="assistant", content=odd),
                    {"role": "assistant", "content": odd, odd: [odd]},
                ],
            )
        ],
    )
    (message,) = (await api.get("/v1/sessions/odd/messages")).json()["items"]
    assert message["content"]["content"][0]["text"] == odd
    sdk_object, plain = message["provider_messages"]
    assert sdk_object["content"] == odd and sdk_object["role"] == "assistant"
    assert plain == {"role": "assistant", "content": odd, odd: [odd]}
    # Read back through the library, the same messages.
    (stored,) = await store.load("odd", "assistant")
    assert stored.content.first_text() == odd


async def test_a_branch_pages_its_inherited_messages_first(api: ApiClient) -> None:
    await _seed(api, "talk")
    store = SqlConversationStore(api.runtime)
    await store.fork("talk", at_sequence=4, agent_name="assistant", new_session_id="branch")
    await store.append("branch", "assistant", _tool_turn(9))
    messages = await _all_pages(api, "/v1/sessions/branch/messages", agent="assistant", limit=2)
    assert [m["sequence"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m["session_id"] for m in messages] == ["talk"] * 4 + ["branch"] * 2
    assert messages[4]["content"]["content"][0]["text"] == "question 9"


async def test_messages_bad_input_names_the_field(api: ApiClient) -> None:
    await _seed(api, "talk")
    assert_problem(await api.get("/v1/sessions/talk/messages"), 422, "agent")
    problem = assert_problem(
        await api.get("/v1/sessions/talk/messages", params={"agent": "nobody"}), 422, "agent"
    )
    assert "assistant" in problem["detail"]
    assert_problem(await api.get("/v1/sessions/nosuch/messages"), 404)
    for limit in (0, 1001, "many"):
        assert_problem(
            await api.get(
                "/v1/sessions/talk/messages", params={"agent": "assistant", "limit": limit}
            ),
            422,
            "limit",
        )
    assert_problem(
        await api.get(
            "/v1/sessions/talk/messages", params={"agent": "assistant", "cursor": "garbage"}
        ),
        422,
        "cursor",
    )
    # A cursor of another list (the critic's messages) is refused, not misread.
    page = (
        await api.get("/v1/sessions/talk/messages", params={"agent": "assistant", "limit": 1})
    ).json()
    assert_problem(
        await api.get(
            "/v1/sessions/talk/messages",
            params={"agent": "critic", "cursor": page["next_cursor"]},
        ),
        422,
        "cursor",
    )
    assert_problem(await api.get("/v1/sessions/" + "x" * 200), 422, "session_id")


# ---------------------------------------------------------------------------------------------
# Fork, export, delete


async def test_fork_at_a_message(api: ApiClient) -> None:
    await _seed(api, "talk")
    forked = await api.post(
        "/v1/sessions/talk/fork", json={"at": 2, "agent": "assistant", "new_session_id": "alt"}
    )
    assert forked.status_code == 201, forked.text
    branch = forked.json()
    assert branch["session_id"] == "alt" and branch["parent_session_id"] == "talk"
    assert branch["message_counts"] == {}
    assert "assistant" in branch["agents"]
    inherited = (await api.get("/v1/sessions/alt/messages", params={"agent": "assistant"})).json()
    assert [m["sequence"] for m in inherited["items"]] == [1, 2]

    generated = await api.post("/v1/sessions/talk/fork", json={"at": 1, "agent": "critic"})
    assert generated.status_code == 201 and len(generated.json()["session_id"]) == 16


async def test_fork_bad_input_changes_nothing(api: ApiClient) -> None:
    await _seed(api, "talk")
    before = await _counts(api)
    for body, field in (
        ({"at": 99, "agent": "assistant"}, "at"),
        ({"at": 0, "agent": "assistant"}, "at"),
        ({"at": "two", "agent": "assistant"}, "at"),
        ({"agent": "assistant"}, "at"),
        ({"at": 1}, "agent"),  # two agents: which one's message 1?
        ({"at": 1, "agent": "nobody"}, "agent"),
        ({"at": 1, "agent": "assistant", "new_session_id": "no spaces"}, "new_session_id"),
        ({"at": 1, "agent": "assistant", "colour": "red"}, "colour"),
    ):
        assert_problem(await api.post("/v1/sessions/talk/fork", json=body), 422, field)
    assert_problem(
        await api.post(
            "/v1/sessions/talk/fork", json={"at": 1, "agent": "assistant", "new_session_id": "talk"}
        ),
        409,
    )
    assert_problem(await api.post("/v1/sessions/nosuch/fork", json={"at": 1}), 404)
    assert await _counts(api) == before


async def test_export_is_upstreams_history_json(api: ApiClient) -> None:
    from mcp_agent.mcp.prompt_serialization import json_to_multipart_messages

    await _seed(api, "talk")
    response = await api.get("/v1/sessions/talk/export", params={"agent": "assistant"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "talk-assistant.json" in response.headers["content-disposition"]
    messages = json_to_multipart_messages(response.text)
    assert [m.first_text() for m in messages] == [
        text for n in range(3) for text in (f"question {n}", f"answer {n}")
    ]
    assert_problem(await api.get("/v1/sessions/talk/export"), 422, "agent")
    assert_problem(await api.get("/v1/sessions/nosuch/export"), 404)


async def test_delete_says_what_and_refuses_while_branches_share_history(
    api: ApiClient,
) -> None:
    await _seed(api, "talk")
    await SqlConversationStore(api.runtime).fork(
        "talk", at_sequence=2, agent_name="assistant", new_session_id="alt"
    )
    before = await _counts(api)
    # Refused while a branch shares its history, dry run or not.
    for params in ({"dry_run": "true"}, {}):
        problem = assert_problem(await api.delete("/v1/sessions/talk", params=params), 409)
        assert "alt" in problem["detail"]
    assert await _counts(api) == before

    assert (await api.delete("/v1/sessions/alt")).json() == {
        "session_id": "alt",
        "messages": 0,
        "deleted": True,
    }
    dry = await api.delete("/v1/sessions/talk", params={"dry_run": "true"})
    assert dry.json() == {"session_id": "talk", "messages": 7, "deleted": False}
    assert (await api.get("/v1/sessions/talk")).status_code == 200
    deleted = await api.delete("/v1/sessions/talk")
    assert deleted.json() == {"session_id": "talk", "messages": 7, "deleted": True}
    assert_problem(await api.get("/v1/sessions/talk"), 404)
    assert_problem(await api.delete("/v1/sessions/talk"), 404)
    assert await _counts(api) == (0, 0)


async def test_create_bad_input_names_the_field_and_changes_nothing(api: ApiClient) -> None:
    for body, field in (
        ({"session_id": "has spaces"}, "session_id"),
        ({"session_id": ""}, "session_id"),
        ({"session_id": "x" * 129}, "session_id"),
        ({"session_id": 7}, "session_id"),
        ({"app_name": "a" * 201}, "app_name"),
        ({"title": "unknown field"}, "title"),
    ):
        assert_problem(await api.post("/v1/sessions", json=body), 422, field)
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"order": "alphabetical"}, "order"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        assert_problem(await api.get("/v1/sessions", params=params), 422, field)
    assert await _counts(api) == (0, 0)

"""/v1/events on both backends: the filtered query in pages (newest first), and the live stream
(server-sent events) receiving events written after it opened, filtered, resuming after
`Last-Event-ID` with nothing repeated or missed, with keep-alives while quiet. Events are
written through the event log's own sink (SqlEventSink), as a run writes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mcp_agent.db.api import event_streams
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.sql import SqlEventSink
from tests.support.api import ApiClient, api_client, assert_problem
from tests.support.streaming_asgi import streaming_client

#: How long a test waits for an event to come down a stream: a guard against a hang only.
STREAM_WAIT_S = 120.0


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url) as client:
        await SqlEventSink(client.runtime).ensure_partitions()
        yield client


async def _write(api: ApiClient, *events: EventRecord) -> None:
    await SqlEventSink(api.runtime).write(list(events))


def _event(
    message: str,
    *,
    session: str | None = "s1",
    agent: str | None = "writer",
    level: str = "info",
    age_s: float = 0.0,
) -> EventRecord:
    return EventRecord(
        occurred_at=datetime.now(UTC) - timedelta(seconds=age_s),
        level=level,
        namespace="tests.api",
        message=message,
        data={"n": message},
        session_id=session,
        agent_name=agent,
    )


class SseReader:
    """The events of a streamed response, one at a time (comments counted, not returned)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments = 0

    async def next(self) -> dict:
        fields: dict = {}
        async with asyncio.timeout(STREAM_WAIT_S):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments += 1
                elif line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                elif fields:
                    fields["data"] = json.loads(fields["data"])
                    return fields
        raise AssertionError(f"the stream ended; had {fields}")


# ---------------------------------------------------------------------------------------------
# The query


async def test_events_come_newest_first_in_pages_with_filters(api: ApiClient) -> None:
    await SqlConversationStore(api.runtime).ensure_session("s1")
    await _write(
        api,
        _event("old", age_s=7200),
        _event("a", session="s1", agent="writer"),
        _event("b", session="s2", agent="critic"),
        _event("c", session="s1", agent="critic", level="warning"),
        _event("d", session="s1", agent="writer", level="debug"),
        _event("e", session=None, agent=None, level="error"),
        _event("f", session="s2", agent="writer"),
    )
    seen, cursor = [], None
    while True:
        params: dict = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [item["message"] for item in seen] == ["f", "e", "d", "c", "b", "a", "old"]
    ids = [item["event_id"] for item in seen]
    assert ids == sorted(ids, reverse=True)
    assert seen[0]["data"] == {"n": "f"} and seen[0]["namespace"] == "tests.api"

    async def messages(**params: str) -> list[str]:
        response = await api.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        return [item["message"] for item in response.json()["items"]]

    assert await messages(session="s1") == ["d", "c", "a", "old"]
    assert await messages(agent="critic") == ["c", "b"]
    assert await messages(level="warning") == ["e", "c"]
    assert await messages(level="info", session="s1") == ["c", "a", "old"]
    assert await messages(since="1h") == ["f", "e", "d", "c", "b", "a"]
    # s2 has events but no session row: still a session of the log (a run that failed early).
    assert await messages(session="s2", agent="writer") == ["f"]


async def test_event_query_bad_input_names_the_field(api: ApiClient) -> None:
    await _write(api, _event("a"))
    for params, field in (
        ({"agent": "nobody"}, "agent"),
        ({"session": "nosuch"}, "session"),
        ({"level": "loud"}, "level"),
        ({"since": "3m"}, "since"),
        ({"limit": 0}, "limit"),
        ({"cursor": "nonsense"}, "cursor"),
    ):
        assert_problem(await api.get("/v1/events", params=params), 422, field)


# ---------------------------------------------------------------------------------------------
# The live stream


async def test_the_stream_receives_what_is_written_after_it_opened_and_resumes(
    api: ApiClient,
) -> None:
    await _write(api, _event("before the stream"))
    async with streaming_client(api.app, api.token) as client:
        async with client.stream(
            "GET", "/v1/events/stream", params={"session": "s1"}, timeout=None
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(response)
            await _write(
                api,
                _event("other session", session="s2"),
                _event("first", session="s1"),
            )
            first = await reader.next()
        assert first["event"] == "log" and first["data"]["message"] == "first"
        assert first["id"] == str(first["data"]["event_id"])
        last_seen = first["id"]

        # Written while nobody listened: the next connection gets them, and nothing before.
        await _write(api, _event("second"), _event("third", session="s2"), _event("fourth"))
        async with client.stream(
            "GET",
            "/v1/events/stream",
            params={"session": "s1"},
            headers={"Last-Event-ID": last_seen},
            timeout=None,
        ) as response:
            reader = SseReader(response)
            resumed = [await reader.next(), await reader.next()]
            await _write(api, _event("fifth"))
            resumed.append(await reader.next())
        assert [event["data"]["message"] for event in resumed] == ["second", "fourth", "fifth"]
        resumed_ids = [int(event["id"]) for event in resumed]
        assert resumed_ids == sorted(resumed_ids) and int(last_seen) < resumed_ids[0]

        # `after` does the same for a client that cannot send headers; the header wins.
        async with client.stream(
            "GET",
            "/v1/events/stream",
            params={"session": "s1", "after": last_seen},
            timeout=None,
        ) as response:
            again = SseReader(response)
            assert (await again.next())["data"]["message"] == "second"
        async with client.stream(
            "GET",
            "/v1/events/stream",
            params={"session": "s1", "after": "0"},
            headers={"Last-Event-ID": str(resumed_ids[1])},
            timeout=None,
        ) as response:
            assert (await SseReader(response).next())["data"]["message"] == "fifth"


async def test_the_stream_filters_by_agent_and_level_and_keeps_alive(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_streams, "KEEPALIVE_INTERVAL_S", 0.3)
    async with (
        streaming_client(api.app, api.token) as client,
        client.stream(
            "GET",
            "/v1/events/stream",
            params={"agent": "critic", "level": "warning"},
            timeout=None,
        ) as response,
    ):
        reader = SseReader(response)
        await _write(
            api,
            _event("quiet", agent="critic", level="info"),
            _event("other", agent="writer", level="error"),
        )
        await asyncio.sleep(1.0)  # the quiet ones pass; keep-alives go out meanwhile
        await _write(api, _event("loud", agent="critic", level="error"))
        event = await reader.next()
    assert event["data"]["message"] == "loud" and event["data"]["level"] == "error"
    assert reader.comments >= 1


async def test_the_stream_refuses_a_bad_resume_point(api: ApiClient) -> None:
    for headers, params, field in (
        ({"Last-Event-ID": "yesterday"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "-3"}, {}, "Last-Event-ID"),
        ({}, {"after": "-1"}, "after"),
        ({}, {"level": "everything"}, "level"),
        ({}, {"session": "s" * 200}, "session"),
    ):
        response = await api.get("/v1/events/stream", headers=headers, params=params)
        assert_problem(response, 422, field)

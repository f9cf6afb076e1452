"""EventSink: what is written is stored as written, and a spilled batch is stored once.

Reading events back is not part of the protocol: `Stores.stored_events` reads each backend
its own way. SQL-only and kept in tests/test_events.py: an event cut to fit the table's
columns, partitions and retention, capture and the outage spill path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mcp_agent.db.events.base import EventRecord
from tests.conformance.stores import Stores

NOW = datetime.now(UTC)


def record(message: str, *, at: datetime = NOW, level: str = "info", **tags: str) -> EventRecord:
    return EventRecord(occurred_at=at, level=level, namespace="tests", message=message, **tags)


AWKWARD_TEXT = [
    "tab\there",
    "line\nbreak and \r\n",
    "back\\slash \\N \\t literally",
    'quotes " and \' and {"json": "inside"}',
    "unicode: \u00e9\u4e2d\U0001f600 and private \ue000",
    "",
]


async def test_stored_events_equal_what_was_written_whatever_the_text(stores: Stores) -> None:
    """The PostgreSQL sink encodes COPY's text format itself: escapes must round-trip."""
    written = [
        EventRecord(
            occurred_at=NOW + timedelta(microseconds=index),
            level="info",
            namespace=f"tests.{text}",
            message=text,
            name=text or None,
            data={"text": text, "nested": [text, {"key\t": text}], "number": 1.5, "none": None},
            session_id=f"awkward-{index}",
            agent_name=text,
            trace_id=None,
            span_id=text[:16],
        )
        for index, text in enumerate(AWKWARD_TEXT)
    ]
    await stores.events.write(written)
    assert await stores.stored_events() == written


async def test_batches_are_stored_in_the_order_written(stores: Stores) -> None:
    await stores.events.write([])
    await stores.events.write(
        [
            record("first", session_id="s", agent_name="a", execution_id="e1"),
            record("second", level="warning", trace_id="t" * 32, span_id="s" * 16),
        ]
    )
    await stores.events.write([record("third", level="debug", at=NOW - timedelta(days=3))])
    stored = await stores.stored_events()
    assert [e.message for e in stored] == ["first", "second", "third"]
    assert (stored[0].session_id, stored[0].agent_name, stored[0].execution_id) == (
        "s",
        "a",
        "e1",
    )
    assert (stored[1].level, stored[1].trace_id, stored[1].span_id) == (
        "warning",
        "t" * 32,
        "s" * 16,
    )
    assert stored[2].occurred_at == NOW - timedelta(days=3)


async def test_a_spilled_batch_is_stored_once_however_often_replayed(stores: Stores) -> None:
    batch = [record(f"spilled {n}", session_id="spill") for n in range(3)]
    assert await stores.events.write_once("spill-1", batch) is True
    assert await stores.events.write_once("spill-1", batch) is False
    assert await stores.events.write_once("spill-1", batch[:1]) is False, "by id, not content"
    assert await stores.events.write_once("spill-2", [record("later")]) is True
    assert await stores.events.write_once("empty", []) is True
    assert await stores.events.write_once("empty", [record("not stored")]) is False
    await stores.events.write([record("live")])
    assert [e.message for e in await stores.stored_events()] == [
        "spilled 0",
        "spilled 1",
        "spilled 2",
        "later",
        "live",
    ]

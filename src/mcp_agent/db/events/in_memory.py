"""In-memory event sink: the reference implementation and the test double."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_agent.db.events.base import EventRecord


class InMemoryEventSink:
    def __init__(self) -> None:
        self.events: list[EventRecord] = []

    async def write(self, events: Sequence[EventRecord]) -> None:
        self.events.extend(events)

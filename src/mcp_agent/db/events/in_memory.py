"""In-memory event sink: the reference implementation and the test double."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_agent.db.events.base import EventRecord


class InMemoryEventSink:
    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        self.spill_ids: set[str] = set()

    async def write(self, events: Sequence[EventRecord]) -> None:
        self.events.extend(events)

    async def write_once(self, spill_id: str, events: Sequence[EventRecord]) -> bool:
        if spill_id in self.spill_ids:
            return False
        self.spill_ids.add(spill_id)
        self.events.extend(events)
        return True

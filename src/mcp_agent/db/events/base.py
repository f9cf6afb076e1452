"""The event sink seam: upstream's logging events, stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class EventRecord:
    occurred_at: datetime
    level: str
    namespace: str
    message: str
    name: str | None = None
    data: dict[str, Any] | None = None
    session_id: str | None = None
    execution_id: str | None = None
    agent_name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventSink(Protocol):
    async def write(self, events: Sequence[EventRecord]) -> None:
        """Store a batch of events atomically (all or none)."""
        ...

    async def write_once(self, spill_id: str, events: Sequence[EventRecord]) -> bool:
        """Store a spilled batch atomically, unless the batch `spill_id` was stored before.

        Returns whether the events were stored now (False: an earlier replay stored them).
        """
        ...

"""Capturing upstream's events: the event bus's transport wrapped for the duration of a run.

Upstream's `AsyncEventBus.reset()` leaves module-level loggers holding the old bus; installing
re-points every cached logger at the current bus, so events keep arriving after a reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_agent.db.events.capture import CapturingTransport, EventWriter


def install(writer: EventWriter, *, level: str) -> CapturingTransport:
    """Wrap the current bus's transport so events at `level` and above reach `writer`."""
    from mcp_agent.logging import logger as upstream_logger
    from mcp_agent.logging.events import StreamingExclusionFilter
    from mcp_agent.logging.transport import AsyncEventBus

    from mcp_agent.db.events.capture import CapturingTransport

    bus = AsyncEventBus.get()
    inner = bus.transport
    while isinstance(inner, CapturingTransport):
        inner = inner.inner
    capturing = CapturingTransport(inner, writer, StreamingExclusionFilter(min_level=level))
    bus.transport = capturing
    for cached in upstream_logger._loggers.values():
        cached.event_bus = bus
    return capturing


def uninstall(capturing: CapturingTransport) -> None:
    """Put back the transport `install` wrapped (if nothing replaced it since)."""
    from mcp_agent.logging.transport import AsyncEventBus

    bus = AsyncEventBus.get()
    if bus.transport is capturing:
        bus.transport = capturing.inner

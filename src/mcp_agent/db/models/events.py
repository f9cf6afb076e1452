"""The structured event log (upstream's logging events).

On PostgreSQL the table is partitioned by `occurred_at` (declarative RANGE partitioning, see
the migration), so retention drops whole partitions instead of deleting rows; its primary key
there is (event_id, occurred_at) because a partitioned table's key must contain the partition
column. SQLite keeps a plain table keyed by event_id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base
from mcp_agent.db.models.types import BigIntId, JsonB, UTCDateTime, utc_now

EVENTS_TABLE = "fa_events"
EVENT_SPILLS_TABLE = "fa_event_spills"


class EventRow(Base):
    __tablename__ = EVENTS_TABLE
    __table_args__ = (
        Index("ix_fa_events_occurred_at", "occurred_at"),
        Index("ix_fa_events_session_occurred", "session_id", "occurred_at"),
        Index("ix_fa_events_execution_id", "execution_id"),
        # SQLite: AUTOINCREMENT, so an id is never drawn again after its row is deleted (a live
        # feed resumes after the last id it saw; migration 0010).
        {"postgresql_partition_by": "RANGE (occurred_at)", "sqlite_autoincrement": True},
    )

    event_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: debug | info | warning | error | progress (upstream `EventType`)
    level: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(300))
    name: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    # No foreign keys: the log outlives the sessions and executions it mentions.
    session_id: Mapped[str | None] = mapped_column(String(128))
    execution_id: Mapped[str | None] = mapped_column(String(36))
    agent_name: Mapped[str | None] = mapped_column(String(200))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))


class EventSpillRow(Base):
    """A spill file whose events were stored (see events/spill.py).

    Written in the same transaction as the file's events, so a replay interrupted after its
    commit, or a file replayed by two processes, cannot store the events twice.
    """

    __tablename__ = EVENT_SPILLS_TABLE

    #: The file's id: `events-<uuid>` (older files: their name and a hash of their content).
    spill_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_count: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

"""Column types that behave the same on PostgreSQL and SQLite.

Migrations import these (not the row classes), so a migration keeps meaning what it meant when
it was written even after a model changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

#: JSON everywhere; JSONB on PostgreSQL so it can be indexed and queried.
JsonB = JSON().with_variant(JSONB(), "postgresql")

#: A 64-bit surrogate key. SQLite only auto-increments a column declared exactly INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored and returned in UTC.

    Naive datetimes are refused rather than guessed at: upstream's `Event.timestamp` is naive
    local time, and storing it unconverted would shift the event log by the machine's offset.
    SQLite drops the zone on storage, so it is re-attached on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError(f"UTCDateTime needs a timezone-aware datetime, got naive {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)

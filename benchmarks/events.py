"""Benchmark: sustained events per second into PostgreSQL, beside COPY on the same server.

The event path is the one a run uses: records are submitted to an EventWriter (no I/O on the
caller's side), which writes batches through SqlEventSink into the partitioned fa_events. The
floor is COPY of the same rows into an unindexed scratch table, measured in the same run.

Run: uv run python benchmarks/events.py [--events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from history import database_url, scratch_database  # noqa: E402

from mcp_agent.db.events.base import EventRecord  # noqa: E402
from mcp_agent.db.events.capture import EventWriter  # noqa: E402
from mcp_agent.db.events.sql import COPY_COLUMNS, SqlEventSink, copy_text_line  # noqa: E402
from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.runtime import DatabaseRuntime  # noqa: E402
from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402


def make_records(count: int) -> list[EventRecord]:
    now = datetime.now(UTC)
    return [
        EventRecord(
            occurred_at=now,
            level="info",
            namespace="mcp_agent.mcp.mcp_aggregator.writer",
            message="Requesting tool call",
            data={"data": {"progress_action": "Calling Tool", "tool_name": "add", "n": number}},
            session_id="bench",
            execution_id="00000000-0000-0000-0000-000000000000",
            agent_name="writer",
        )
        for number in range(count)
    ]


async def writer_rate(url: str, records: list[EventRecord]) -> float:
    async with await DatabaseRuntime.open(url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=Path(tempfile.mkdtemp()))
        await writer.start()
        started = time.perf_counter()
        for record in records:
            await writer.submit(record)
            if writer.written == 0 and len(records) > 1000:
                await asyncio.sleep(0)  # let the writer run as a producer would
        await writer.close()
        elapsed = time.perf_counter() - started
        assert writer.written == len(records) and writer.spilled == 0
    return len(records) / elapsed


def copy_rate(libpq_url: str, records: list[EventRecord], *, into_events_table: bool) -> float:
    """The server's COPY rate for the same rows: the COPY payload is prepared before timing.

    `into_events_table`: into fa_events itself (its partitions and indexes, the same work the
    writer's rows cause); otherwise into an unindexed temporary table (no WAL, no indexes).
    """
    payload = "".join(map(copy_text_line, records)).encode()
    with psycopg.connect(libpq_url) as connection:
        table = "fa_events"
        if not into_events_table:
            table = "copy_floor"
            connection.execute(
                "CREATE TEMP TABLE copy_floor (occurred_at timestamptz, level text, "
                "namespace text, name text, message text, data jsonb, session_id text, "
                "execution_id text, agent_name text, trace_id text, span_id text)"
            )
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy,
        ):
            copy.write(payload)
        connection.commit()
        return len(records) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    count = parser.parse_args().events
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    records = make_records(count)
    with postgres_server() as server_url, scratch_database(server_url, "fa_bench") as database:
        url = make_url(database_url(server_url, database, "postgresql+psycopg"))
        await asyncio.to_thread(
            lambda: MigrationRunner(url.render_as_string(hide_password=False)).upgrade()
        )
        rate = await writer_rate(url.render_as_string(hide_password=False), records)
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        floor = copy_rate(libpq, records, into_events_table=True)
        unindexed = copy_rate(libpq, records, into_events_table=False)
    print(f"\n{count:,} events into PostgreSQL")
    print(f"{'event writer (fa_events)':<36}{rate:>12,.0f} events/s")
    print(f"{'COPY into fa_events (floor)':<36}{floor:>12,.0f} rows/s")
    print(f"{'COPY into an unindexed temp table':<36}{unindexed:>12,.0f} rows/s")
    print(f"{'writer / COPY into fa_events':<36}{rate / floor:>12.2f}")


if __name__ == "__main__":
    asyncio.run(main())

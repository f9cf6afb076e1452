"""Write N events from this process through EventWriter and SqlEventSink (feed tests).

Each event's message is `WRITER-NUMBER`, its session SESSION. Every BATCH submitted events
are flushed, so they commit as one transaction and interleave with other writers' batches.
With PAUSE_AFTER above 0, once that many are stored it prints `paused` and waits for a line on
stdin before writing the rest. Prints `written N` once all are stored.

usage: python -m tests.support.write_events DATABASE_URL SPILL_DIR SESSION WRITER N BATCH
       [PAUSE_AFTER]
"""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.capture import EventWriter
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.runtime import DatabaseRuntime


async def main(
    url: str,
    spill_dir: Path,
    session_id: str,
    writer_name: str,
    count: int,
    batch: int,
    pause_after: int,
) -> None:
    async with await DatabaseRuntime.open(url) as runtime:
        writer = EventWriter(SqlEventSink(runtime), spill_dir=spill_dir, batch_size=batch)
        await writer.start()
        for number in range(count):
            await writer.submit(
                EventRecord(
                    occurred_at=datetime.now(UTC),
                    level="info",
                    namespace="tests.feed",
                    message=f"{writer_name}-{number}",
                    session_id=session_id,
                    agent_name=writer_name,
                )
            )
            if (number + 1) % batch == 0 or number + 1 == pause_after:
                await writer.flush()
            if number + 1 == pause_after:
                print("paused", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
        await writer.close()
        if writer.spilled or writer.quarantined or writer.written != count:
            sys.exit(f"stored {writer.written} of {count} (spilled {writer.spilled})")
    print(f"written {count}", flush=True)


if __name__ == "__main__":
    url, spill_dir, session_id, writer_name, count, batch, *pause = sys.argv[1:]
    asyncio.run(
        main(
            url,
            Path(spill_dir),
            session_id,
            writer_name,
            int(count),
            int(batch),
            int(pause[0]) if pause else 0,
        )
    )

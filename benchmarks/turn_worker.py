"""One configuration of the turn-cost benchmark, in its own process (upstream keeps process-wide
state, so configurations must not share one). Prints the per-turn times as JSON.

usage: python turn_worker.py {upstream|fork} MODEL TURNS [DATABASE_URL]
Run from a directory holding the fastagent.config.yaml the upstream configuration uses.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def main(mode: str, model: str, turns: int, database_url: str | None) -> None:
    if mode == "upstream":
        from mcp_agent.core.fastagent import FastAgent

        fast = FastAgent("bench", parse_cli_args=False)
    else:
        from mcp_agent.db import FastAgent

        fast = FastAgent("bench", parse_cli_args=False, database_url=database_url)

    @fast.agent(name="assistant", model=model)
    async def _agent() -> None: ...

    timings = []
    async with fast.run() as app:
        for number in range(turns + 5):
            started = time.perf_counter()
            await app.assistant.send(f"turn {number}: tell me something short")
            if number >= 5:  # the first turns warm caches and connections
                timings.append((time.perf_counter() - started) * 1000)
    print("TIMINGS:" + json.dumps(timings))


if __name__ == "__main__":
    mode, model, turns, *rest = sys.argv[1:]
    asyncio.run(main(mode, model, int(turns), rest[0] if rest else None))

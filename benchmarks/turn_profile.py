"""Profile: where one agent turn's time goes in the fork, on PostgreSQL and SQLite.

Runs a passthrough agent for a number of turns in a run backed by a fresh database (an
embedded PostgreSQL, or FAST_AGENT_TEST_DATABASE_URL's server; a SQLite file), under cProfile,
and prints the functions with the most cumulative time per turn, and the median turn time.
The passthrough model answers at once, so what is left is the fork's bookkeeping: the running
row, the end of the call (turn, usage, execution), the histories' snapshots, event capture.

Run: uv run python benchmarks/turn_profile.py [--turns 300] [--backend postgresql|sqlite]
     [--top 25] [--out FILE.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from history import database_url, scratch_database  # noqa: E402

from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.testing.embedded_postgres import postgres_server  # noqa: E402


async def turns(url: str, count: int, profile: cProfile.Profile) -> list[float]:
    from mcp_agent.db import FastAgent

    fast = FastAgent("profile", parse_cli_args=False, database_url=url)

    @fast.agent(name="assistant", model="passthrough")
    async def _agent() -> None: ...

    timings = []
    async with fast.run() as app:
        for number in range(10):  # warm caches and connections, unprofiled
            await app.assistant.send(f"warm {number}")
        profile.enable()
        for number in range(count):
            started = time.perf_counter()
            await app.assistant.send(f"turn {number}: tell me something short")
            timings.append((time.perf_counter() - started) * 1000)
        profile.disable()
    return timings


def summary(profile: cProfile.Profile, turns: int, top: int) -> list[dict[str, object]]:
    """The `top` functions by cumulative time, as ms per turn, named file:line(function) with
    the path shortened to the package (benchmarks/suite.py puts this in its report)."""
    stats = pstats.Stats(profile)
    rows = []
    ranked = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][3],
        reverse=True,
    )
    for (filename, line, function), (_calls, _primitive, _own, cumulative, _callers) in ranked:
        # The event loop's own frames and this script's contain everything: they say nothing.
        if filename == "~" or "/asyncio/" in filename or filename == __file__:
            continue
        where = re.sub(r"^.*(site-packages/|/src/|/python3\.\d+/)", "", filename)
        rows.append(
            {"function": f"{where}:{line}({function})", "ms_per_turn": 1000 * cumulative / turns}
        )
        if len(rows) == top:
            break
    return rows


def profile_turns(url: str, count: int) -> tuple[list[float], cProfile.Profile]:
    """`count` profiled turns of a passthrough agent on `url`, run from a scratch directory
    whose config turns off the console (as main does)."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            Path("fastagent.config.yaml").write_text(
                "default_model: passthrough\nlogger: {type: none, progress_display: false, "
                "show_chat: false, show_tools: false}\n"
            )
            profile = cProfile.Profile()
            timings = asyncio.run(turns(url, count, profile))
        finally:
            os.chdir(previous)
    return timings, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="also save the raw profile here")
    arguments = parser.parse_args()
    os.environ.pop("FAST_AGENT_DATABASE_URL", None)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # no fastagent.config.yaml: settings from the (empty) database
        Path("fastagent.config.yaml").write_text(
            "default_model: passthrough\nlogger: {type: none, progress_display: false, "
            "show_chat: false, show_tools: false}\n"
        )
        if arguments.backend == "postgresql":
            server = os.environ.get("FAST_AGENT_TEST_DATABASE_URL") or stack.enter_context(
                postgres_server()
            )
            name = stack.enter_context(scratch_database(server, "fa_profile"))
            url = database_url(server, name, "postgresql+psycopg")
        else:
            url = f"sqlite:///{Path(scratch) / 'profile.db'}"
        MigrationRunner(url).upgrade()
        profile = cProfile.Profile()
        timings = asyncio.run(turns(url, arguments.turns, profile))
    if arguments.out:
        profile.dump_stats(arguments.out)
    print(
        f"{arguments.backend}: {arguments.turns} turns, median {statistics.median(timings):.2f} ms"
        f" per turn (profiled), min {min(timings):.2f} ms"
    )
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("cumulative").print_stats(arguments.top)
    print(stream.getvalue())


if __name__ == "__main__":
    main()

"""Benchmark: what an admin command costs from the shell, against the interpreter's start-up.

Times whole processes, as a user pays for them: `python -c pass` (the floor), upstream's
`fast-agent --version`, and `fast-agent-db --version`, `sessions list`, `logs -n 10` and
`db status` on a SQLite database holding 20 sessions and 2,000 events. Runs are interleaved
round by round (each round runs every command once, in a rotating order) so drift on a shared
machine hits all of them alike; each run is timed by wall clock and by the child's CPU time
(user + system), which other work on the machine disturbs less. The figure that matters is
each command's median minus the floor's: what the command adds to starting Python.

Target (issue 14): admin commands within 0.5 s of interpreter start-up on an idle machine.

The console scripts of the running interpreter's environment are used (the project's .venv
with its editable install: one more sys.path entry than a wheel install, which costs
microseconds).

Run: uv run python benchmarks/admin_commands.py [--runs 10] [--report FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BIN = Path(sys.executable).parent


def commands(database_url: str) -> dict[str, list[str]]:
    url = ["--database-url", database_url]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "fast-agent --version (upstream)": [str(BIN / "fast-agent"), "--version"],
        "fast-agent-db --version": [str(BIN / "fast-agent-db"), "--version"],
        "fast-agent-db sessions list": [str(BIN / "fast-agent-db"), "sessions", "list", *url],
        "fast-agent-db logs -n 10": [str(BIN / "fast-agent-db"), "logs", "-n", "10", *url],
        "fast-agent-db db status": [str(BIN / "fast-agent-db"), "db", "status", *url],
    }


async def seed(database_url: str) -> None:
    from mcp_agent.core.prompt import Prompt

    from mcp_agent.db.conversations.base import NewMessage
    from mcp_agent.db.conversations.sql import SqlConversationStore
    from mcp_agent.db.events.base import EventRecord
    from mcp_agent.db.events.sql import SqlEventSink
    from mcp_agent.db.runtime import DatabaseRuntime

    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        for number in range(20):
            session_id = f"session-{number:02d}"
            await store.ensure_session(session_id)
            await store.append(
                session_id,
                "assistant",
                [NewMessage(Prompt.user("hello")), NewMessage(Prompt.assistant("hi"))],
            )
        now = datetime.now(UTC)
        await SqlEventSink(runtime).write(
            [
                EventRecord(occurred_at=now, level="info", namespace="bench", message=f"e {n}")
                for n in range(2000)
            ]
        )


def timed(command: list[str], workdir: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--report", type=Path, help="also write the table (markdown) here")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fast-agent-db-admin-bench-") as scratch:
        workdir = Path(scratch)
        database_url = f"sqlite:///{workdir / 'bench.db'}"
        asyncio.run(seed(database_url))
        timed_commands = commands(database_url)
        names = list(timed_commands)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for name in names:  # a warm-up run each (file caches, .pyc)
            timed(timed_commands[name], workdir)
        for round_number in range(arguments.runs):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(timed(timed_commands[name], workdir))

    floor_wall = statistics.median(wall for wall, _cpu in samples["python -c pass"])
    floor_cpu = statistics.median(cpu for _wall, cpu in samples["python -c pass"])
    lines = [
        f"# Admin command cost ({arguments.runs} interleaved runs, {os.cpu_count()} CPUs)",
        "",
        "| command | wall min ms | wall median ms | CPU median ms | over `python -c pass` "
        "(wall median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        walls = [wall for wall, _cpu in samples[name]]
        cpus = [cpu for _wall, cpu in samples[name]]
        over_wall = statistics.median(walls) - floor_wall
        over_cpu = statistics.median(cpus) - floor_cpu
        lines.append(
            f"| {name} | {min(walls):.0f} | {statistics.median(walls):.0f} | "
            f"{statistics.median(cpus):.0f} | {over_wall:+.0f} ms ({over_cpu:+.0f} CPU) |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if arguments.report:
        arguments.report.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()

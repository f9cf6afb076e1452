"""Benchmark: what the drop-in activation costs at interpreter start-up (no database set).

At start-up Python executes the one line of fast_agent_db.pth, which defines a small finder
and puts it on sys.meta_path; no module is searched for or imported. This measures that
line's execution time beside the interpreter's whole start-up (`python -c pass`), both as
medians over repeated runs, with FAST_AGENT_DATABASE_URL unset.

Run: uv run python benchmarks/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import site
import statistics
import subprocess
import sys
import time
from pathlib import Path


def pth_line() -> str:
    for directory in [*site.getsitepackages(), site.getusersitepackages()]:
        path = Path(directory) / "fast_agent_db.pth"
        if path.is_file():
            return path.read_text().strip()
    raise SystemExit("fast_agent_db.pth is not installed in this environment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}

    wall = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=environment, check=True)
        wall.append((time.perf_counter() - started) * 1000)

    line = pth_line()
    hook = []
    for _ in range(runs):
        saved = list(sys.meta_path)
        sys.meta_path[:] = [f for f in saved if type(f).__name__ != "_FastAgentDbFinder"]
        started = time.perf_counter()
        exec(line, {"__name__": "site"})  # what site.addpackage does with the line
        hook.append((time.perf_counter() - started) * 1000)
        sys.meta_path[:] = saved

    start_ms, hook_ms = statistics.median(wall), statistics.median(hook)
    print(f"python {sys.version.split()[0]}, medians of {runs} runs")
    print(f"interpreter start-up (python -c pass): {start_ms:8.2f} ms")
    print(f"fast_agent_db.pth line:                {hook_ms:8.4f} ms ({hook_ms / start_ms:.2%})")


if __name__ == "__main__":
    main()

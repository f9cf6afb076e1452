"""Benchmark: what the drop-in activation costs a user who has configured no database.

A user pays for the activation when a program imports upstream's FastAgent
(`python -c "import mcp_agent.core.fastagent"`), so that is what is timed, in two fresh
virtual environments built here from the same interpreter and the same locked requirements
(`uv export --frozen --no-dev --no-emit-project`, installed by `uv pip install`):

- upstream: fast-agent-mcp and its locked dependencies only, as if the fork were not installed;
- fork: the same, plus this checkout's wheel (`uv build --wheel`), installed the way a user
  installs it: fast_agent_db.pth and its hook in site-packages, mcp_agent/db inside mcp_agent.

The project's own .venv is not used for either side: its editable install adds src/ to
sys.path (one more directory searched by every top-level import) and forwards mcp_agent.db
through a shim, which no user has; switching the finder off in-process would keep both.
Both environments are byte-compiled at install, so no run pays for writing .pyc files.
Runs are paired and the order alternates (upstream first, then fork first) to cancel drift;
each run is timed by wall clock and by the child's CPU time (user + system), which other work
on the machine disturbs less. No database is configured: FAST_AGENT_DATABASE_URL is removed
from the environment and the runs start in an empty directory with no fastagent.config.yaml
above it. The packages each side loads are compared once, and the .pth line's own execution
time is shown beside `python -c pass`.

Needs uv (the dev group installs it) and its cache or PyPI for the locked packages.

Run: uv run python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMPORT_FASTAGENT = "import mcp_agent.core.fastagent"
LOADED_MODULES = IMPORT_FASTAGENT + "; import sys, json; print(json.dumps(sorted(sys.modules)))"


def uv_executable() -> str:
    beside_python = Path(sys.executable).parent / "uv"
    found = str(beside_python) if beside_python.is_file() else shutil.which("uv")
    if found is None:
        raise SystemExit("uv is needed to build the two environments (uv sync installs it)")
    return found


def run_uv(*args: str) -> str:
    result = subprocess.run(
        [uv_executable(), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"uv {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def make_environment(directory: Path, requirements: Path, *extra: str) -> Path:
    """A virtual environment of this interpreter with the locked requirements (and `extra`)."""
    run_uv("venv", "--quiet", "--python", sys.executable, str(directory))
    python = directory / "bin" / "python"
    run_uv(
        "pip", "install", "--quiet", "--compile-bytecode",
        "--python", str(python), "-r", str(requirements), *extra,
    )  # fmt: skip
    return python


@dataclass
class Timings:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def timed_run(python: Path, code: str, workdir: Path, environment: dict[str, str]) -> Timings:
    """One run of `python -c code`: its wall time and the CPU time of the child it reaped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(python), "-c", code], cwd=workdir, env=environment, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timings(wall_ms=[wall * 1000], cpu_ms=[cpu * 1000])


def paired_runs(
    upstream: Path, fork: Path, code: str, runs: int, workdir: Path, environment: dict[str, str]
) -> tuple[Timings, Timings]:
    """`runs` pairs, one warm-up pair first; odd pairs run the fork first."""
    timings = {upstream: Timings(), fork: Timings()}
    for pair in range(runs + 1):
        order = (upstream, fork) if pair % 2 == 0 else (fork, upstream)
        for python in order:
            run = timed_run(python, code, workdir, environment)
            if pair > 0:
                timings[python].wall_ms += run.wall_ms
                timings[python].cpu_ms += run.cpu_ms
    return timings[upstream], timings[fork]


def loaded_modules(python: Path, workdir: Path, environment: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [str(python), "-c", LOADED_MODULES],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout))


def pth_line_ms(fork_python: Path, runs: int) -> float:
    """Median time of executing the installed .pth line, as site.addpackage does at start-up."""
    site_packages = subprocess.run(
        [str(fork_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    line = Path(site_packages, "fast_agent_db.pth").read_text(encoding="utf-8").strip()
    samples = []
    for _ in range(runs):
        saved = list(sys.meta_path)
        sys.meta_path[:] = [f for f in saved if type(f).__name__ != "_FastAgentDbFinder"]
        started = time.perf_counter()
        exec(line, {"__name__": "site"})
        samples.append((time.perf_counter() - started) * 1000)
        sys.meta_path[:] = saved
    return statistics.median(samples)


def module_summary(names: list[str]) -> str:
    """Names, with a package that brings more than three modules shown as `package.* (N)`."""
    by_package: dict[str, list[str]] = {}
    for name in names:
        by_package.setdefault(name.split(".")[0], []).append(name)
    shown = []
    for package, modules in by_package.items():
        shown += [f"{package}.* ({len(modules)})"] if len(modules) > 3 else modules
    return ", ".join(shown) or "none"


def pair_quartiles(fork: list[float], upstream: list[float]) -> tuple[float, float, float]:
    """Quartiles of the per-pair ratios fork/upstream (each pair ran under the same
    conditions): the median, and the middle half (how far apart two runs of one import fall)."""
    ratios = [f / u for f, u in zip(fork, upstream, strict=True)]
    lower, median, upper = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return lower, median, upper


def pair_ratios(fork: list[float], upstream: list[float]) -> str:
    lower, median, upper = pair_quartiles(fork, upstream)
    return f"{median:.3f}x (middle half {lower:.3f}-{upper:.3f})"


def row(label: str, timings: Timings) -> str:
    wall, cpu = timings.wall_ms, timings.cpu_ms
    return (
        f"{label:<34} {min(wall):9.1f} {statistics.median(wall):9.1f}"
        f" {min(cpu):9.1f} {statistics.median(cpu):9.1f}"
    )


def measure(runs: int) -> dict[str, Any]:
    """Time `runs` pairs; the report's lines and the ratios (benchmarks/suite.py uses them)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"FAST_AGENT_DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV"}
    }

    with tempfile.TemporaryDirectory(prefix="fast-agent-db-startup-") as scratch:
        scratch_dir = Path(scratch)
        workdir = scratch_dir / "work"
        workdir.mkdir()
        for directory in [workdir, *workdir.parents]:
            if (directory / "fastagent.config.yaml").exists():
                raise SystemExit(f"{directory}/fastagent.config.yaml would configure the runs")

        print("building the wheel and two environments...", file=sys.stderr)
        requirements = scratch_dir / "requirements.txt"
        requirements.write_text(
            run_uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes")
        )
        run_uv("build", "--wheel", "--quiet", "--out-dir", str(scratch_dir / "dist"))
        (wheel,) = (scratch_dir / "dist").glob("fast_agent_db-*.whl")
        upstream = make_environment(scratch_dir / "upstream", requirements)
        fork = make_environment(scratch_dir / "fork", requirements, "--no-deps", str(wheel))

        upstream_modules = loaded_modules(upstream, workdir, environment)
        fork_modules = loaded_modules(fork, workdir, environment)
        if "fast_agent_db_hook" not in fork_modules:
            raise SystemExit("the fork's activation did not run: is fast_agent_db.pth installed?")

        print(f"timing {runs} pairs...", file=sys.stderr)
        imports = paired_runs(upstream, fork, IMPORT_FASTAGENT, runs, workdir, environment)
        bare = paired_runs(upstream, fork, "pass", runs, workdir, environment)
        line_ms = pth_line_ms(fork, runs=max(runs, 30))

    upstream_imports, fork_imports = imports
    extra = sorted(fork_modules - upstream_modules)
    python_version = sys.version.split()[0]
    pass_ms = statistics.median(bare[0].wall_ms)
    share = line_ms / pass_ms
    lines = [
        f"python {python_version}, {runs} pairs, order alternated, no database configured",
        f"{'ms':<34} {'wall min':>9} {'median':>9} {'cpu min':>9} {'median':>9}",
        row("import FastAgent, upstream only", upstream_imports),
        row("import FastAgent, fork installed", fork_imports),
        "fork / upstream, median of pair ratios:"
        f" wall {pair_ratios(fork_imports.wall_ms, upstream_imports.wall_ms)},"
        f" cpu {pair_ratios(fork_imports.cpu_ms, upstream_imports.cpu_ms)}",
        f"modules the fork loads beyond upstream's ({len(extra)}): {module_summary(extra)}",
        row("python -c pass, upstream only", bare[0]),
        row("python -c pass, fork installed", bare[1]),
        f"fast_agent_db.pth line alone: {line_ms:.4f} ms ({share:.2%} of python -c pass)",
    ]
    lower, median, upper = pair_quartiles(fork_imports.cpu_ms, upstream_imports.cpu_ms)
    return {
        "lines": lines,
        "cpu_ratio": median,
        "cpu_middle_half": [lower, upper],
        "wall_ratio": pair_quartiles(fork_imports.wall_ms, upstream_imports.wall_ms)[1],
        "min_cpu_ratio": min(fork_imports.cpu_ms) / min(upstream_imports.cpu_ms),
        "extra_modules": extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="pairs of FastAgent imports")
    print("\n".join(measure(parser.parse_args().runs)["lines"]))


if __name__ == "__main__":
    main()

"""Benchmark: the REST API against the library calls it wraps, on a real `fast-agent-db serve`.

For each backend (SQLite, and an embedded PostgreSQL or FAST_AGENT_TEST_DATABASE_URL):
* messages: a session of 10,000 messages (user and assistant turns with provider-native
  payloads, as a run stores them) read whole through GET /v1/sessions/{id}/messages, in pages
  of 1,000 (the most a page holds: 10 requests, each following the last's cursor), against
  SqlConversationStore.load of the same history in this process (the library's way to read a
  history: upstream's objects); and one page of 1,000 against the call that route makes,
  load_page_json (the page as stored JSON), and against load_page (the page as objects);
* tree: GET /v1/executions/{id} of a workflow's tree (a root, 10 steps, sub-calls under each;
  rows written as a run writes them) against SqlExecutionStore.tree;
* throughput: requests per second of a small GET (/v1/sessions/{id}, a few hundred bytes) from
  1, 16 and 64 concurrent clients (httpx, one connection each) for a fixed time, errors counted.

Each timing is the median of its repeats; a GET is timed until its whole body has arrived,
by a minimal HTTP/1.1 client (one keep-alive connection, the body read by its Content-Length):
what the server and the transport cost, not a client library's. The whole history is also read
with httpx, whose parsing of a response in Python adds a cost of its own (shown beside). The
library calls run in this process on a warm runtime; the server is one uvicorn process. Target
(issue 17): each GET within 1.5x of its library call, and no errors at 64 clients. The clients
run on the same machine as the server, so the request rates are a floor of what it does alone.

Run: uv run python benchmarks/api.py [--backends sqlite,postgresql] [--messages 10000]
     [--tree 200] [--seconds 5] [--repeats 7] [--json results.json]
Not part of the tests. Measure on a quiet machine (`uptime`: load below 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history import database_url, scratch_database, turn  # noqa: E402

from mcp_agent.db.conversations.sql import SqlConversationStore  # noqa: E402
from mcp_agent.db.executions.base import ExecutionStart  # noqa: E402
from mcp_agent.db.executions.sql import SqlExecutionStore  # noqa: E402
from mcp_agent.db.executions.usage import UsageTotals  # noqa: E402
from mcp_agent.db.migration_runner import MigrationRunner  # noqa: E402
from mcp_agent.db.models.types import utc_now  # noqa: E402
from mcp_agent.db.runtime import DatabaseRuntime  # noqa: E402
from mcp_agent.db.tokens.sql import SqlTokenStore  # noqa: E402
from mcp_agent.db.turns.base import CallEnd  # noqa: E402
from mcp_agent.db.turns.sql import SqlTurnStore  # noqa: E402

SESSION = "bench-api"
AGENT = "agent"
PAGE = 1000  # the most messages a page holds (routers/sessions.py)
TARGET_RATIO = 1.5
CONCURRENCY = (1, 16, 64)
BUILD_BATCH = 1000


# ---------------------------------------------------------------------------------------------
# Data, built untimed


async def build_session(runtime: DatabaseRuntime, size: int) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session(SESSION)
    for start in range(0, size, BUILD_BATCH):
        count = min(BUILD_BATCH, size - start)
        batch = [m for n in range(start // 2, (start + count + 1) // 2) for m in turn(n)]
        await store.append(SESSION, AGENT, batch[:count])


async def build_tree(runtime: DatabaseRuntime, size: int) -> str:
    """A workflow's tree of `size` executions: a root, 10 steps, the rest sub-calls of the
    steps; each call's start, then its end with its totals, as the run recorder writes them."""
    turns = SqlTurnStore(runtime)

    async def start(agent: str, parent: str | None) -> str:
        execution_id = str(uuid.uuid4())
        await turns.start_call(
            ExecutionStart(
                execution_id=execution_id,
                parent_execution_id=parent,
                agent_name=agent,
                agent_version_id=None,
                operation="generate",
                started_at=utc_now(),
                worker_id="bench",
                session_id=SESSION,
                settings_source="database",
            )
        )
        return execution_id

    async def end(execution_id: str, tokens: int) -> UsageTotals:
        totals = UsageTotals(input_tokens=tokens, output_tokens=tokens // 10)
        await turns.end_call(CallEnd(execution_id, "completed", utc_now(), totals=totals))
        return totals

    root = await start("workflow", None)
    steps = 10
    per_step = max(0, (size - 1 - steps) // steps)
    for step in range(steps):
        step_id = await start(f"step-{step}", root)
        for _ in range(per_step):
            await end(await start("helper", step_id), 100)
        await end(step_id, 100 * (per_step + 1))
    await end(root, 100 * (per_step + 1) * steps)
    return root


# ---------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`fast-agent-db serve` on a free port (its output in a file, shown if it fails)."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.base_url = f"http://127.0.0.1:{free_port()}"
        self.log_path = log_path
        self._log = log_path.open("w")
        command = [
            str(Path(sys.executable).parent / "fast-agent-db"),
            "serve",
            "--port",
            self.base_url.rsplit(":", 1)[1],
            "--log-level",
            "warning",
            "--database-url",
            url,
        ]
        environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
        self.process = subprocess.Popen(
            command, env=environment, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.log_path.read_text()}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"serve did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# ---------------------------------------------------------------------------------------------
# Timings


class MinimalHttpClient:
    """GETs on one keep-alive HTTP/1.1 connection, each body read by its Content-Length and
    not parsed: the least a client can spend on a response."""

    def __init__(self, base_url: str, token: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._address = (host, int(port))
        self._token = token
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path_and_query: str) -> bytes:
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self._address)
        reader, writer = self._streams
        writer.write(
            f"GET {path_and_query} HTTP/1.1\r\nHost: {self._address[0]}\r\n"
            f"Authorization: Bearer {self._token}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"GET {path_and_query}: {status.decode()} {body[:300]!r}")
        return body

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            with suppress(OSError):
                await self._streams[1].wait_closed()


async def median_time(work: Callable[[], Awaitable[Any]], repeats: int) -> float:
    await work()  # warm: caches, connections, the first decode of upstream's classes
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def get_all_messages(get: Callable[[str], Awaitable[bytes]], size: int) -> None:
    """Every page of the history, each asked for with the last page's cursor."""
    cursor: str | None = None
    received = 0
    while True:
        query = f"agent={AGENT}&limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        body = await get(f"/v1/sessions/{SESSION}/messages?{query}")
        # The cursor is at the end of the body: found without parsing the whole page.
        tail = body[-400:].decode("utf-8", "replace")
        cursor = json.loads("{" + tail[tail.rindex('"next_cursor"') :])["next_cursor"]
        received += PAGE
        if cursor is None:
            break
    assert received >= size


async def throughput(base_url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    """Requests/s of GET /v1/sessions/{id} from `clients` concurrent clients for `seconds`."""
    done = errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=60,
    ) as client:
        await client.get(f"/v1/sessions/{SESSION}")  # one warm connection before timing
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                try:
                    response = await client.get(f"/v1/sessions/{SESSION}")
                    if response.status_code == 200:
                        done += 1
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"clients": clients, "requests_per_s": done / elapsed, "errors": errors}


async def measure(url: str, args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    async with await DatabaseRuntime.open(url) as runtime:
        await build_session(runtime, args.messages)
        root = await build_tree(runtime, args.tree)
        token = (await SqlTokenStore(runtime).create("bench")).value
        store = SqlConversationStore(runtime)
        executions = SqlExecutionStore(runtime)
        library_all = await median_time(lambda: store.load(SESSION, AGENT), args.repeats)
        library_page = await median_time(
            lambda: store.load_page(SESSION, AGENT, after_sequence=0, limit=PAGE), args.repeats
        )
        library_page_json = await median_time(
            lambda: store.load_page_json(SESSION, AGENT, after_sequence=0, limit=PAGE),
            args.repeats,
        )
        library_tree = await median_time(lambda: executions.tree(root), args.repeats)
        tree_size = len(await executions.tree(root))

    server = Server(url, work_dir / f"serve-{uuid.uuid4().hex[:6]}.log")
    try:
        await asyncio.to_thread(server.wait_until_healthy)
        client = MinimalHttpClient(server.base_url, token)
        try:
            api_all = await median_time(
                lambda: get_all_messages(client.get, args.messages), args.repeats
            )
            api_page = await median_time(
                lambda: client.get(f"/v1/sessions/{SESSION}/messages?agent={AGENT}&limit={PAGE}"),
                args.repeats,
            )
            api_tree = await median_time(lambda: client.get(f"/v1/executions/{root}"), args.repeats)
        finally:
            await client.close()
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as httpx_client:

            async def httpx_get(path_and_query: str) -> bytes:
                response = await httpx_client.get(path_and_query)
                response.raise_for_status()
                return response.content

            api_all_httpx = await median_time(
                lambda: get_all_messages(httpx_get, args.messages), args.repeats
            )
        rates = [
            await throughput(server.base_url, token, clients, args.seconds)
            for clients in CONCURRENCY
        ]
    finally:
        server.stop()
    return {
        "comparisons": [
            {
                "measure": f"{args.messages:,} messages ({-(-args.messages // PAGE)} pages)",
                "library": "SqlConversationStore.load",
                "library_s": library_all,
                "api_s": api_all,
            },
            {
                "measure": f"{args.messages:,} messages, httpx client",
                "library": "SqlConversationStore.load",
                "library_s": library_all,
                "api_s": api_all_httpx,
            },
            {
                "measure": f"one page of {PAGE:,} messages",
                "library": "SqlConversationStore.load_page_json",
                "library_s": library_page_json,
                "api_s": api_page,
            },
            {
                "measure": f"one page of {PAGE:,} (as objects)",
                "library": "SqlConversationStore.load_page",
                "library_s": library_page,
                "api_s": api_page,
            },
            {
                "measure": f"tree of {tree_size} executions",
                "library": "SqlExecutionStore.tree",
                "library_s": library_tree,
                "api_s": api_tree,
            },
        ],
        "throughput": rates,
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'backend':<11} {'measure':<32} {'library call':<36} {'library':>10} {'GET':>10} "
        f"{'ratio':>7}  target <= {TARGET_RATIO}x"
    )
    for backend, result in results.items():
        for row in result["comparisons"]:
            ratio = row["api_s"] / row["library_s"]
            print(
                f"{backend:<11} {row['measure']:<32} {row['library']:<36} "
                f"{row['library_s'] * 1000:>7.1f} ms {row['api_s'] * 1000:>7.1f} ms "
                f"{ratio:>6.2f}x  {'met' if ratio <= TARGET_RATIO else 'missed'}"
            )
    print(f"\n{'backend':<11} {'GET /v1/sessions/{id}':<30} {'requests/s':>12} {'errors':>8}")
    for backend, result in results.items():
        for rate in result["throughput"]:
            print(
                f"{backend:<11} {str(rate['clients']) + ' concurrent clients':<30} "
                f"{rate['requests_per_s']:>12,.0f} {rate['errors']:>8}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--tree", type=int, default=200, help="executions in the tree")
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]

    print(f"load average: {os.getloadavg()[0]:.2f} (measure with it below 1)")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as directory:
        work_dir = Path(directory)
        if "sqlite" in backends:
            url = f"sqlite:///{work_dir / 'bench.db'}"
            with MigrationRunner(url) as runner:
                runner.upgrade()
            results["sqlite"] = asyncio.run(measure(url, args, work_dir))
        if "postgresql" in backends:
            from mcp_agent.db.testing.embedded_postgres import postgres_server

            with (
                postgres_server() as server_url,
                scratch_database(server_url, "fa_bench_api") as name,
            ):
                url = database_url(server_url, name, "postgresql+psycopg")
                with MigrationRunner(url) as runner:
                    runner.upgrade()
                results["postgresql"] = asyncio.run(measure(url, args, work_dir))
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

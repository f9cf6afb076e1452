"""Workers on separate hosts against one PostgreSQL (tests/support/netns.py: a network
namespace per host, a veth to the root namespace, PostgreSQL reached over it).

* the harness: a process on a host reaches PostgreSQL over its veth, with the password, and
  not over 127.0.0.1 (its loopback is its own) nor another host's subnet;
* `fast-agent-db worker` on three hosts, RUNS runs with a tool call submitted over the REST
  API: every run completes exactly once, each session has its turns once and gap-free, the
  hosts share the work; one host is killed (every process on it, kill -9) while its run waits
  on the model after the tool call: a worker on another host takes the run once the lease has
  expired and finishes it, replaying the completed model request and tool call from the
  journal; no completed model request is repeated and no tool call goes without its result.

Each host has its own fake model server on its own 127.0.0.1 (tests/support/fake_model_host.py,
the same URL on every host, as the settings in the database name one), logging every request
to a file that outlives the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.migration_runner import MigrationRunner
from mcp_agent.db.models import ExecutionRow
from mcp_agent.db.models.runs import RunRow, WorkerRow
from mcp_agent.db.runs.base import ENDED_STATUSES
from mcp_agent.db.runs.sql import SqlRunStore
from tests.support.agent_runs import configure_assistant
from tests.support.api import ApiClient, api_client
from tests.support.netns import (
    Host,
    HostsPostgres,
    netns_unavailable,
    postgres_for_hosts,
    separate_hosts,
)
from tests.support.processes import GUARD_S, describe, run_guarded, wait_guarded

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

_unavailable = netns_unavailable()
if _unavailable is not None:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=_unavailable)]


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    with separate_hosts(3) as made:
        yield made


@pytest.fixture(scope="module")
def hosts_postgres(hosts: list[Host]) -> Iterator[HostsPostgres]:
    with postgres_for_hosts(hosts) as server:
        yield server


#: Run inside a host: connect to each URL given, print what happened, one JSON line each.
_PROBE = """
import json, socket, sys
import psycopg
print(json.dumps({"hostname": socket.gethostname()}))
for url in sys.argv[1:]:
    try:
        with psycopg.connect(url, connect_timeout=30) as connection:
            row = connection.execute("SELECT host(inet_client_addr())").fetchone()
        print(json.dumps({"url": url, "client": row[0]}))
    except psycopg.OperationalError as error:
        print(json.dumps({"url": url, "error": str(error)}))
"""


def test_a_host_reaches_postgresql_over_its_veth_and_not_over_loopback(
    hosts: list[Host], hosts_postgres: HostsPostgres
) -> None:
    first, second = hosts[0], hosts[1]
    over_veth = hosts_postgres.url_for(first)
    over_loopback = hosts_postgres.local_url()
    other_hosts_gateway = hosts_postgres.url_for(second)
    wrong_password = over_veth.replace(hosts_postgres.password, "wrong")
    probed = run_guarded(
        first.python("-c", _PROBE, over_veth, over_loopback, other_hosts_gateway, wrong_password),
        text=True,
        expect_code=0,
    )
    hostname, *answers = [json.loads(line) for line in probed.stdout.splitlines()]
    # Its own host name too: a worker's id (host:pid) names the host it runs on.
    assert hostname == {"hostname": first.name}, describe(probed)
    assert [answer["url"] for answer in answers] == [
        over_veth,
        over_loopback,
        other_hosts_gateway,
        wrong_password,
    ], describe(probed)
    veth, loopback, other, refused = answers
    # The server sees the host's own address: the connection came over the veth.
    assert veth.get("client") == first.address, describe(probed)
    # 127.0.0.1 inside the host is the host's loopback, where nothing listens.
    assert "refused" in loopback.get("error", ""), describe(probed)
    # A host has no route to another host's subnet.
    assert "unreachable" in other.get("error", "").lower(), describe(probed)
    assert "password authentication failed" in refused.get("error", ""), describe(probed)

    # The root namespace's side still reaches it on loopback (the test's own set-up).
    import psycopg

    with psycopg.connect(hosts_postgres.local_url()) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------------------------
# Workers on three hosts

#: Each run starts its agent and a stdio MCP server: about a second of a core each.
RUNS = 30
#: The run whose host is killed: its model request after the tool call is held in flight.
HELD_RUN = 15
#: Every host's fake model listens on this port of its own loopback.
FAKE_MODEL_PORT = 18765
#: Short, so the lost host's run is taken over soon after the kill; long enough that a
#: heartbeat (every third of it) is never late on a loaded machine.
LEASE_S = 10


def _message(index: int) -> str:
    # Distinct arguments: every request body differs, so a repeated body is a repeated call.
    return f'CALL calculator-add {{"a": {index}, "b": 1000}}'


def _start(command: list[str], log: Path) -> subprocess.Popen[str]:
    """A process writing to a file (a pipe nobody reads would fill up and stall it)."""
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=REPO, text=True, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _model_log(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]


def _kill_everything_in(host: Host) -> None:
    """The host is lost: every process on it killed at once, as a machine that goes away."""
    while pids := host.pids():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


class HostProcesses:
    """What runs on the hosts, with its output for a failure message."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, tuple[subprocess.Popen[str], Path]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[str]:
        log = self.logs / f"{name}.out"
        self.started[name] = (_start(command, log), log)
        return self.started[name][0]

    def output(self) -> str:
        return "\n".join(
            f"--- {name} (exit {process.poll()}) ---\n{log.read_text(errors='replace')[-4000:]}"
            for name, (process, log) in self.started.items()
        )

    def check_alive(self, *names: str) -> None:
        for name in names:
            process, _ = self.started[name]
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode})\n{self.output()}")


async def _wait_for(
    happened: Callable[[], Awaitable[bool]], processes: HostProcesses, *alive: str
) -> None:
    """Wait for an event (under the suite's guard, no speed limit), failing with every
    process's output if one that should run has exited."""
    waited_since = time.monotonic()
    while not await happened():
        processes.check_alive(*alive)
        if time.monotonic() - waited_since > GUARD_S:
            pytest.fail(f"still waiting after the guard (hung?)\n{processes.output()}")
        await asyncio.sleep(0.1)


async def test_workers_on_three_hosts_run_each_run_once_and_take_over_a_lost_hosts_run(
    hosts: list[Host], hosts_postgres: HostsPostgres, tmp_path: Path
) -> None:
    database = hosts_postgres.create_database()
    database_url = hosts_postgres.local_url(database)
    with MigrationRunner(database_url) as runner:
        runner.upgrade()
    await configure_assistant(database_url, f"http://127.0.0.1:{FAKE_MODEL_PORT}/v1", tmp_path)
    model_logs = {host.name: tmp_path / f"{host.name}.model.jsonl" for host in hosts}
    processes = HostProcesses(tmp_path)
    workers = [f"worker on {host.name}" for host in hosts]
    models = [f"model on {host.name}" for host in hosts]
    try:
        async with api_client(database_url, token_name="hosts-test") as api:
            for host in hosts:
                processes.start(
                    f"model on {host.name}",
                    host.python(
                        "-m", "tests.support.fake_model_host", "--port", str(FAKE_MODEL_PORT),
                        "--log", model_logs[host.name], "--hold", _message(HELD_RUN),
                        "--held-file", tmp_path / "held",
                    ),
                )  # fmt: skip

            async def every_model_listens() -> bool:
                return all(
                    (tmp_path / f"model on {host.name}.out").read_text().startswith("ready")
                    for host in hosts
                )

            # A run claimed before its host's model listens would fail its first attempt.
            await _wait_for(every_model_listens, processes, *models)
            for host in hosts:
                processes.start(
                    f"worker on {host.name}",
                    host.python(
                        "-m", "mcp_agent.db.cli", "worker", "--lease", str(LEASE_S),
                        "--database-url", hosts_postgres.url_for(host, database),
                    ),
                )  # fmt: skip

            async def every_host_has_a_worker() -> bool:
                async with api.runtime.sessions() as session:
                    registered = await session.scalars(select(WorkerRow.host))
                    return {host.name for host in hosts} <= set(registered)

            await _wait_for(every_host_has_a_worker, processes, *workers)

            submitted_at = time.monotonic()
            run_ids = []
            for index in range(RUNS):
                submitted = await api.post(
                    "/v1/runs",
                    json={"agent": "assistant", "message": _message(index)},
                    headers={"Idempotency-Key": f"run-{index}"},
                )
                assert submitted.status_code == 202, submitted.text
                run_ids.append(submitted.json()["run_id"])

            # The held run's host is lost in the middle of the run.
            def held_on() -> Host | None:
                for host in hosts:
                    if any("held" in line for line in _model_log(model_logs[host.name])):
                        return host
                return None

            async def a_request_is_held() -> bool:
                return held_on() is not None

            await _wait_for(a_request_is_held, processes, *workers)
            lost = held_on()
            assert lost is not None
            _kill_everything_in(lost)
            killed_at = datetime.now(UTC)
            survivors = [f"worker on {host.name}" for host in hosts if host is not lost]

            async def every_run_ended() -> bool:
                async with api.runtime.sessions() as session:
                    ended = await session.scalar(
                        select(func.count())
                        .select_from(RunRow)
                        .where(RunRow.status.in_(ENDED_STATUSES))
                    )
                    return ended == RUNS

            await _wait_for(every_run_ended, processes, *survivors)
            all_ended_s = time.monotonic() - submitted_at
            held = await SqlRunStore(api.runtime).get(run_ids[HELD_RUN])
            assert held.finished_at is not None
            print(
                f"{RUNS} runs on {len(hosts)} hosts: all ended {all_ended_s:.1f} s after the "
                f"first submit; the lost host's run ended "
                f"{(held.finished_at - killed_at).total_seconds():.1f} s after the kill "
                f"(lease {LEASE_S} s)"
            )

            for name in survivors:
                worker, _ = processes.started[name]
                worker.send_signal(signal.SIGTERM)
                assert wait_guarded(worker) == 0, processes.output()

            await _assert_every_run_completed_once(api, run_ids, hosts, lost, processes)
            await _assert_no_completed_call_repeated(model_logs, run_ids, processes)
    finally:
        for host in hosts:
            _kill_everything_in(host)
        for process, _ in processes.started.values():
            process.wait()


async def _assert_every_run_completed_once(
    api: ApiClient, run_ids: list[str], hosts: list[Host], lost: Host, processes: HostProcesses
) -> None:
    listed = []
    cursor = None
    while True:
        page = await api.get(
            "/v1/runs", params={"limit": 200, **({"cursor": cursor} if cursor else {})}
        )
        listed += page.json()["items"]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    runs = {run["run_id"]: run for run in listed}
    assert set(runs) == set(run_ids)
    not_completed = [run for run in runs.values() if run["status"] != "completed"]
    assert not not_completed, f"{not_completed}\n{processes.output()}"
    for index, run_id in enumerate(run_ids):
        assert runs[run_id]["result"].endswith(f"tool said: {index + 1000}"), runs[run_id]

    async with api.runtime.sessions() as session:
        executions = (
            await session.execute(
                select(ExecutionRow.run_id, ExecutionRow.status, ExecutionRow.worker_id)
                .where(ExecutionRow.parent_execution_id.is_(None))
                .order_by(ExecutionRow.started_at)
            )
        ).all()
    by_run: dict[str, list[tuple[str, str]]] = {}
    for run_id, status, worker_id in executions:
        by_run.setdefault(run_id, []).append((status, worker_id.rpartition(":")[0]))
    held = run_ids[HELD_RUN]
    for run_id in run_ids:
        statuses = [status for status, _ in by_run[run_id]]
        expected = ["interrupted", "completed"] if run_id == held else ["completed"]
        assert statuses == expected, (run_id, by_run[run_id])
    # The lost host's run was finished on another host, on its second attempt.
    (first_host, second_host) = [host for _, host in by_run[held]]
    assert first_host == lost.name and second_host != lost.name
    assert runs[held]["attempts"] == 2
    # The hosts shared the work.
    assert {host for run in by_run.values() for _, host in run} == {h.name for h in hosts}

    # Each run's session: the message and the reply (the tool call rides on it), once each.
    conversations = SqlConversationStore(api.runtime)
    for run_id in run_ids:
        history = await conversations.load(runs[run_id]["session_id"], "assistant")
        assert [message.sequence for message in history] == [1, 2], (run_id, history)
        assert [message.content.role for message in history] == ["user", "assistant"]


async def _assert_no_completed_call_repeated(
    model_logs: dict[str, Path], run_ids: list[str], processes: HostProcesses
) -> None:
    received: list[dict[str, Any]] = []
    answered: list[dict[str, Any]] = []
    for log in model_logs.values():
        lines = _model_log(log)
        bodies = {line["received"]: line["body"] for line in lines if "received" in line}
        received += bodies.values()
        answered += [bodies[line["answered"]] for line in lines if "answered" in line]
    # Two model requests per run (the tool call, then the reply with the tool's result), each
    # answered once across all hosts; the held one was asked again on the second host.
    assert len(answered) == 2 * len(run_ids), processes.output()
    answered_bodies = [json.dumps(body, sort_keys=True) for body in answered]
    assert len(set(answered_bodies)) == len(answered_bodies), "a completed request was repeated"
    assert len(received) == 2 * len(run_ids) + 1  # + the held request, never answered
    for body in received:
        messages = body.get("messages", [])
        for position, message in enumerate(messages):
            for call in message.get("tool_calls") or []:
                assert any(
                    later.get("role") == "tool" and later.get("tool_call_id") == call["id"]
                    for later in messages[position + 1 :]
                ), f"tool call {call['id']} without its result: {messages}"

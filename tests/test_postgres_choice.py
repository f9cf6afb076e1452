"""Which PostgreSQL the suite uses, and that embedded servers of killed runs are cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mcp_agent.db.testing.embedded_postgres import (
    OWNER_FILE,
    SERVER_DIRECTORY_PREFIX,
    _pid_alive,
    choose_postgres,
    docker_engine_answers,
    postgres_server,
    sweep_stale_servers,
)


def test_a_configured_server_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAST_AGENT_TEST_DATABASE_URL", "postgresql://me@somewhere/postgres")
    choice = choose_postgres()
    assert choice.source == "configured" and "FAST_AGENT_TEST_DATABASE_URL" in choice.reason
    with postgres_server(choice) as url:
        assert url == "postgresql://me@somewhere/postgres"


def test_without_docker_the_embedded_server_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAST_AGENT_TEST_DATABASE_URL", raising=False)
    answers, why = docker_engine_answers()
    choice = choose_postgres()
    if answers:
        assert choice.source == "testcontainers"
    else:
        assert choice.source == "embedded" and why in choice.reason


def test_testcontainers_postgres_when_a_docker_engine_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers, why = docker_engine_answers()
    if not answers:
        pytest.skip(f"the Docker path needs a Docker engine: {why}")
    monkeypatch.delenv("FAST_AGENT_TEST_DATABASE_URL", raising=False)
    import psycopg

    with postgres_server() as url:
        libpq = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq) as connection:
            assert connection.execute("select 1").fetchone() == (1,)


def _dead_pid() -> int:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(finished.stdout)


def _server_directory(root: Path, owner: int, postmaster: int | None) -> Path:
    directory = root / f"{SERVER_DIRECTORY_PREFIX}test{owner}"
    (directory / "data").mkdir(parents=True)
    (directory / OWNER_FILE).write_text(str(owner))
    if postmaster is not None:
        (directory / "data" / "postmaster.pid").write_text(f"{postmaster}\n/data\n")
    return directory


_SLEEPER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *_: sys.exit(0))\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
_STARTER = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE,\n"
    "                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)\n"
    "child.stdout.readline()  # its SIGINT handler is installed\n"
    "print(child.pid)\n"
)


def _orphan_sleeper() -> int:
    """A process that stops on SIGINT (as a postmaster does) and is not our child (as a
    killed run's postmaster is not): started through a parent that exits at once."""
    started = subprocess.run(
        [sys.executable, "-c", _STARTER, _SLEEPER], capture_output=True, text=True, check=True
    )
    return int(started.stdout)


def test_servers_of_killed_runs_are_stopped_and_removed(tmp_path: Path) -> None:
    postmaster = _orphan_sleeper()
    try:
        stale = _server_directory(tmp_path, _dead_pid(), postmaster)
        live = _server_directory(tmp_path, os.getpid(), None)
        foreign = tmp_path / f"{SERVER_DIRECTORY_PREFIX}no-owner"
        foreign.mkdir()
        assert sweep_stale_servers(tmp_path) == [stale]
        assert not _pid_alive(postmaster)
        assert not stale.exists() and live.exists() and foreign.exists()
    finally:
        if _pid_alive(postmaster):
            os.kill(postmaster, signal.SIGKILL)


def test_the_suites_embedded_server_records_its_owner(postgres_databases: object) -> None:
    if choose_postgres().source != "embedded":
        pytest.skip("this run's PostgreSQL is not an embedded server")
    owners = [
        int((directory / OWNER_FILE).read_text())
        for directory in Path(tempfile.gettempdir()).glob(SERVER_DIRECTORY_PREFIX + "*")
        if (directory / OWNER_FILE).exists()
    ]
    assert os.getpid() in owners

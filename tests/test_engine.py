"""The PostgreSQL engine's pool: dead idle connections are replaced before anyone uses them."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mcp_agent.db import engine as engine_module
from mcp_agent.db.runtime import DatabaseRuntime


def _terminate_other_backends(database_url: str) -> int:
    """What a server restart or an idle timeout does to a pooled connection."""
    libpq = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(killed[0]) if killed else 0


async def _select_one(runtime: DatabaseRuntime) -> int:
    async with runtime.engine.connect() as connection:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        assert await _select_one(runtime) == 1  # one pooled connection, now idle
        assert _terminate_other_backends(database_url) >= 1
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)  # it idled long enough
        assert await _select_one(runtime) == 1


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def test_a_connection_used_moments_ago_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the trade: no round trip for a connection that just worked, so a
    kill in that window surfaces once (and the pool then starts afresh)."""
    async with await DatabaseRuntime.open(database_url) as runtime:
        assert await _select_one(runtime) == 1
        assert _terminate_other_backends(database_url) >= 1
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 3600.0)
        with pytest.raises(OperationalError):
            await _select_one(runtime)
        assert await _select_one(runtime) == 1

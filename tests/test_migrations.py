"""Migrations: the round trip, drift from the models, and the schema check at open."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text

from mcp_agent.db.engine import create_sync_database_engine
from mcp_agent.db.errors import FastAgentDbError, SchemaOutOfDateError
from mcp_agent.db.migration_runner import MigrationRunner, head_revision
from mcp_agent.db.models import Base
from mcp_agent.db.runtime import DatabaseRuntime


def _our_tables(raw_url: str) -> set[str]:
    engine = create_sync_database_engine(raw_url)
    try:
        with engine.connect() as connection:
            return {
                name for name in inspect(connection).get_table_names() if name.startswith("fa_")
            }
    finally:
        engine.dispose()


async def test_round_trip_upgrade_check_downgrade_upgrade(empty_database_url: str) -> None:
    model_tables = set(Base.metadata.tables)

    def round_trip() -> None:
        with MigrationRunner(empty_database_url) as runner:
            assert runner.current() is None

            runner.upgrade()
            assert runner.current() == head_revision()
            assert model_tables <= _our_tables(empty_database_url)
            assert runner.drift() == [], "the migrations and the models disagree"

            runner.downgrade("base")
            assert runner.current() is None
            # Only Alembic's (now empty) bookkeeping table may remain.
            assert _our_tables(empty_database_url) <= {"fa_schema_version"}

            runner.upgrade("head")
            assert runner.current() == head_revision()
            assert runner.drift() == []

    await asyncio.to_thread(round_trip)


@pytest.mark.postgresql
async def test_postgres_event_log_is_partitioned(postgres_databases, postgres_template) -> None:
    name = postgres_databases.create(template=postgres_template)
    try:
        async with await DatabaseRuntime.open(postgres_databases.url(name)) as runtime:
            async with runtime.engine.connect() as connection:
                kinds = dict(
                    (
                        await connection.execute(
                            text(
                                "SELECT relname, relkind FROM pg_class "
                                "WHERE relname IN ('fa_events', 'fa_events_default')"
                            )
                        )
                    ).all()
                )
        assert kinds == {"fa_events": "p", "fa_events_default": "r"}
    finally:
        postgres_databases.drop(name)


async def test_opening_an_unmigrated_database_without_creating_names_the_command(
    empty_database_url: str,
) -> None:
    with pytest.raises(SchemaOutOfDateError) as raised:
        await DatabaseRuntime.open(empty_database_url, create_if_empty=False)
    message = str(raised.value)
    assert "has no fast-agent-db schema yet" in message
    assert "fast-agent-db db upgrade" in message
    assert raised.value.current is None
    assert raised.value.required == head_revision()
    assert raised.value.state == "empty"


async def test_opening_a_database_at_a_revision_we_do_not_know_calls_it_newer(
    database_url: str,
) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.engine.begin() as connection:
            await connection.execute(text("UPDATE fa_schema_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutOfDateError, match="revision 0000, which is newer") as raised:
        await DatabaseRuntime.open(database_url)
    assert raised.value.state == "newer"


async def test_opening_without_schema_check_works_on_empty_database(
    empty_database_url: str,
) -> None:
    async with await DatabaseRuntime.open(empty_database_url, check_schema=False) as runtime:
        assert await runtime.schema_revision() is None


def test_unknown_revision_is_a_clear_error(tmp_path) -> None:
    with MigrationRunner(f"sqlite:///{tmp_path / 'x.db'}") as runner:
        with pytest.raises(FastAgentDbError, match="Can't locate revision identified by 'nope'"):
            runner.upgrade("nope")
        assert runner.current() is None


async def test_a_database_one_revision_behind_is_refused_until_upgraded(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(lambda: MigrationRunner(empty_database_url).upgrade("0001"))
    with pytest.raises(SchemaOutOfDateError) as raised:
        await DatabaseRuntime.open(empty_database_url)
    assert raised.value.current == "0001"
    assert raised.value.state == "older"
    assert f"is at schema revision 0001; this fast-agent-db needs {head_revision()}" in str(
        raised.value
    )
    assert "fast-agent-db db upgrade" in str(raised.value)

    await asyncio.to_thread(lambda: MigrationRunner(empty_database_url).upgrade())
    async with await DatabaseRuntime.open(empty_database_url) as runtime:
        async with runtime.engine.connect() as connection:
            seeded = await connection.scalar(text("SELECT count(*) FROM fa_models"))
    assert seeded and seeded >= 10, "0002 ships the price table"


async def test_a_failed_upgrade_leaves_no_half_made_schema(empty_database_url: str) -> None:
    """DDL is transactional on both backends, SQLite included (see the sync engine)."""

    def fail_midway() -> None:
        engine = create_sync_database_engine(empty_database_url)
        try:
            with engine.begin() as connection:
                # 0001 creates fa_agents first and fa_sessions later: this one makes it fail.
                connection.execute(text("CREATE TABLE fa_sessions (id INTEGER PRIMARY KEY)"))
        finally:
            engine.dispose()
        with MigrationRunner(empty_database_url) as runner:
            with pytest.raises(FastAgentDbError, match="rolled back: .*fa_sessions"):
                runner.upgrade()
            assert runner.current() is None

    await asyncio.to_thread(fail_midway)
    assert _our_tables(empty_database_url) == {"fa_sessions"}


async def test_a_downgrade_plan_of_a_database_without_schema(empty_database_url: str) -> None:
    def plan() -> None:
        with MigrationRunner(empty_database_url) as runner:
            nothing = runner.plan_downgrade("base")
            assert (nothing.current, nothing.target, nothing.losses) == (None, None, [])
            with pytest.raises(FastAgentDbError, match="has no fast-agent-db schema"):
                runner.plan_downgrade("0001")

    await asyncio.to_thread(plan)


def test_the_schema_head_constant_is_the_migration_chains_head() -> None:
    """Commands check a database's revision against SCHEMA_HEAD without loading Alembic: a
    new migration must move it along."""
    from mcp_agent.db.schema_head import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD

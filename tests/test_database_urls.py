"""Database URLs and engines: driver selection, redaction, pragmas and clear errors."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mcp_agent.db.engine import create_async_database_engine
from mcp_agent.db.errors import DatabaseUnavailableError, DatabaseUrlError
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import (
    DATABASE_URL_ENV,
    redact_url,
    resolve_database_url,
    to_async_url,
)


@pytest.mark.parametrize(
    ("typed", "driver"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg"),
        ("postgres://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("some/dir/file.db", "sqlite+aiosqlite"),
    ],
)
def test_users_type_plain_urls_and_get_the_async_driver(typed: str, driver: str) -> None:
    assert to_async_url(typed).drivername == driver


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("mysql://u:s3cret@h/db", "Unsupported database backend 'mysql'"),
        ("", "empty"),
        ("postgresql://u:s3cret@h:notaport/db", "Cannot parse the database URL"),
    ],
)
def test_bad_urls_fail_clearly_without_the_password(typed: str, expected: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        to_async_url(typed)
    assert expected in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_redaction_hides_passwords_even_in_unparseable_urls() -> None:
    assert redact_url("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert "s3cret" not in redact_url("postgresql://u:s3cret@h:bad/db")


def test_url_precedence_explicit_then_environment_then_default(monkeypatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert resolve_database_url(None) == "sqlite:///fastagent.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://env/db")
    assert resolve_database_url(None) == "postgresql://env/db"
    assert resolve_database_url("sqlite:///explicit.db") == "sqlite:///explicit.db"


async def test_unreachable_postgres_names_the_server_not_the_password() -> None:
    with pytest.raises(DatabaseUnavailableError) as raised:
        await DatabaseRuntime.open("postgresql://fa:s3cret@127.0.0.1:1/nowhere")
    message = str(raised.value)
    assert "Cannot connect to the database" in message
    assert "127.0.0.1:1/nowhere" in message
    assert "s3cret" not in message


async def test_sqlite_in_a_missing_directory_fails_clearly(tmp_path) -> None:
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        await DatabaseRuntime.open(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


@pytest.mark.sqlite
async def test_sqlite_connections_get_their_pragmas(tmp_path) -> None:
    engine = create_async_database_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 30000
    finally:
        await engine.dispose()

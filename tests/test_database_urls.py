"""Database URLs and engines: driver selection, redaction, pragmas and clear errors."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mcp_agent.db.engine import (
    SQLITE_BUSY_TIMEOUT_ENV,
    create_async_database_engine,
    prepare_sqlite_file,
)
from mcp_agent.db.errors import DatabaseUnavailableError, DatabaseUrlError
from mcp_agent.db.runtime import DatabaseRuntime, how_to_run_db_upgrade
from mcp_agent.db.urls import (
    DATABASE_URL_ENV,
    redact_url,
    resolve_database_url,
    to_async_url,
)
from tests.support.cli import ainvoke


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


# Issue #13, item 7: database URL passwords never reach a message, in any spelling.

PASSWORD = "pa55@w0rdQZX"  # an unencoded '@', as users paste it
PASSWORD_PARTS = ("pa55", "w0rdQZX")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u:{PASSWORD}@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:a@b:c@d@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://h/db?password=s3cret&sslpassword=s3cret&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require&sslpassword=***",
        ),
        (
            "postgresql://h/db?PassWord=s3cret&auth_token=s3cret",
            "postgresql://h/db?PassWord=***&auth_token=***",
        ),
        (
            "postgresql://u:s3cret@h:bad/db?password=s3cret&x=1",
            "postgresql://***",
        ),
        ("sqlite:////data/me@work/fa.db", "sqlite:////data/me%40work/fa.db"),
    ],
)
def test_redaction_hides_every_secret_of_a_url(typed: str, shown: str) -> None:
    assert redact_url(typed) == shown
    assert "s3cret" not in redact_url(typed) and "w0rdQZX" not in redact_url(typed)


@pytest.mark.parametrize(
    ("typed", "password", "host"),
    [
        (f"postgresql://u:{PASSWORD}@db.example/x", PASSWORD, "db.example"),
        ("postgresql://user@domain:pw@db.example/x", "pw", "db.example"),
        ("postgresql://u:a@b:c@d@db.example:5433/x?options=a@b", "a@b:c@d", "db.example"),
    ],
)
def test_an_unencoded_at_sign_belongs_to_the_password(typed: str, password: str, host: str) -> None:
    url = to_async_url(typed)
    assert (url.password, url.host) == (password, host)
    assert "@" not in (url.host or "")


def test_a_sqlite_url_naming_a_server_is_refused_without_the_password() -> None:
    with pytest.raises(DatabaseUrlError, match="names a server") as raised:
        to_async_url("sqlite://u:s3cret@host/x.db?password=s3cret")
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "typed",
    [
        f"postgresql://fa:{PASSWORD}@127.0.0.1:1/nowhere",
        f"postgresql://127.0.0.1:1/nowhere?user=fa&password={PASSWORD}",
    ],
)
async def test_a_failed_connection_names_the_host_not_the_password(typed: str) -> None:
    """make_url (and libpq) end the user-info at the first '@', which made `w0rdQZX@127.0.0.1`
    the host: psycopg's "failed to resolve host" message then carried part of the password."""
    with pytest.raises(DatabaseUnavailableError) as raised:
        await DatabaseRuntime.open(typed)
    message = str(raised.value)
    assert "Cannot connect to the database" in message and "127.0.0.1" in message
    assert not any(part in message for part in PASSWORD_PARTS)


def test_the_suggested_upgrade_command_carries_placeholders_not_secrets() -> None:
    suggestion = how_to_run_db_upgrade(
        f"postgresql://u:{PASSWORD}@h/db?sslpassword=s3cret&sslmode=require"
    )
    assert "<password>" in suggestion and "<sslpassword>" in suggestion
    assert "s3cret" not in suggestion and not any(part in suggestion for part in PASSWORD_PARTS)


def _with_secrets(database_url: str, backend: str) -> str:
    """The test database's URL with a password in its query and, where the server ignores
    passwords (the embedded PostgreSQL trusts local connections), one with '@' in its
    user-info."""
    separator = "&" if "?" in database_url else "?"
    with_query = f"{database_url}{separator}sslpassword={PASSWORD}"
    if backend == "sqlite":
        return with_query
    url = make_url(database_url)
    if url.password:
        return with_query  # a configured server checks its password: keep the real one
    scheme, _, rest = with_query.partition("://")
    userinfo, _, after = rest.partition("@")
    return f"{scheme}://{userinfo.rstrip(':')}:{PASSWORD}@{after}"


@pytest.mark.filterwarnings("ignore:Query string argument")  # SQLite ignores the query
async def test_status_and_upgrade_lines_show_the_url_redacted(
    database_url: str, backend: str
) -> None:
    url = _with_secrets(database_url, backend)
    for arguments in (("db", "status"), ("db", "upgrade"), ("db", "current")):
        result = await ainvoke(*arguments, "--database-url", url)
        assert result.exit_code == 0, result.output
        assert not any(part in result.output for part in PASSWORD_PARTS), result.output
    status = await ainvoke("db", "status", "--database-url", url)
    assert "sslpassword=***" in status.output


@pytest.mark.filterwarnings("ignore:Query string argument")  # SQLite ignores the query
async def test_error_lines_show_the_url_redacted(empty_database_url: str, backend: str) -> None:
    url = _with_secrets(empty_database_url, backend)
    if backend == "sqlite":
        await asyncio.to_thread(prepare_sqlite_file, url, create=True)
    result = await ainvoke("sessions", "list", "--database-url", url)
    assert result.exit_code == 1, result.output
    assert "has no fast-agent-db schema yet" in result.output
    assert not any(part in result.output for part in PASSWORD_PARTS), result.output


@pytest.mark.sqlite
async def test_the_busy_timeout_comes_from_its_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(SQLITE_BUSY_TIMEOUT_ENV, "1.5")
    engine = create_async_database_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 1500
    finally:
        await engine.dispose()

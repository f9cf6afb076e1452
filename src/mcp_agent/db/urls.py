"""Database URLs: where the URL comes from, which driver serves it, and how it is shown.

Users type the URLs they know (`postgresql://…`, `sqlite:///file.db`, or a bare file path);
we map them to the async drivers we ship: psycopg 3 for PostgreSQL, aiosqlite for SQLite.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Defined apart so the drop-in activation can read it without importing SQLAlchemy; callers
# keep importing it from here.
from mcp_agent.db.environment_variables import DATABASE_URL_ENV
from mcp_agent.db.errors import DatabaseUrlError

DEFAULT_DATABASE_FILE = "fastagent.db"

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg_async"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}


def resolve_database_url(explicit: str | None = None) -> str:
    """The URL to use: an explicit one, else `FAST_AGENT_DATABASE_URL`, else `./fastagent.db`."""
    if explicit:
        return explicit
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{DEFAULT_DATABASE_FILE}"


def to_async_url(raw_url: str) -> URL:
    """Parse a user-supplied URL and select the async driver for its backend.

    Raises:
        DatabaseUrlError: the URL cannot be parsed or names an unsupported backend.
    """
    text = raw_url.strip()
    if not text:
        raise DatabaseUrlError("The database URL is empty.")
    if "://" not in text:
        # A bare path means a SQLite file, the embedded default.
        text = f"sqlite:///{text}"
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(
            f"Cannot parse the database URL {redact_url(text)!r}: expected a form like "
            "postgresql://user:password@host:5432/dbname or sqlite:///path/to/file.db."
        ) from None
    driver = url.drivername
    if driver in _POSTGRES_DRIVERS:
        return url.set(drivername="postgresql+psycopg")
    if driver in _SQLITE_DRIVERS:
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(
        f"Unsupported database backend {driver!r} in {redact_url(text)!r}: "
        "fast-agent-db supports postgresql:// (psycopg 3) and sqlite:///FILE."
    )


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by `***`, safe for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparseable: hide everything between '://' and the last '@', where a password would be.
        scheme, sep, rest = url.partition("://")
        if sep and "@" in rest:
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return url


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)

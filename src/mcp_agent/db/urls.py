"""Database URLs: where the URL comes from, which driver serves it, and how it is shown.

Users type the URLs they know (`postgresql://…`, `sqlite:///file.db`, or a bare file path);
we map them to the async drivers we ship: psycopg 3 for PostgreSQL, aiosqlite for SQLite.

A URL's secrets are its password and the values of its secret-looking query parameters
(`?password=`, `?sslpassword=`, any name containing a word of `SECRET_PARAMETER_WORDS`); every
message shows URLs through `redact_url`, and driver messages through `redact_secrets`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Defined apart so the drop-in activation can read it without importing SQLAlchemy; callers
# keep importing it from here.
from mcp_agent.db.environment_variables import DATABASE_URL_ENV
from mcp_agent.db.errors import DatabaseUrlError

DEFAULT_DATABASE_FILE = "fastagent.db"

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg_async"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}

#: A query parameter whose name contains one of these (case-insensitive) carries a secret:
#: libpq's `password` and `sslpassword`, and the words of the settings' secret-name rule.
SECRET_PARAMETER_WORDS = ("pass", "key", "token", "secret", "auth", "credential")
#: What a secret is shown as.
REDACTED = "***"
#: Stands in for a secret while a URL is rendered, which would percent-encode `***`.
_SENTINEL = "FASTAGENTDBREDACTEDVALUE"
_QUERY_PARAMETER = re.compile(r"(?P<name>[^?&=#\s]+)=(?P<value>[^&#\s]*)")


def resolve_database_url(explicit: str | None = None) -> str:
    """The URL to use: an explicit one, else `FAST_AGENT_DATABASE_URL`, else `./fastagent.db`."""
    if explicit:
        return explicit
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{DEFAULT_DATABASE_FILE}"


def is_secret_parameter(name: str) -> bool:
    """Whether a URL query parameter of this name carries a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAMETER_WORDS)


def parse_url(text: str) -> URL:
    """Parse a URL as SQLAlchemy's `make_url` does, with the one reading that keeps secrets
    where they belong: the query starts at the first `?`, and the user-info ends at the last
    `@` before it.

    `make_url` (like libpq) ends the user-info at the first `@`, so an unencoded `@` in a
    password made the rest of it the host name, shown in "failed to resolve host" messages;
    and an `@` in a query value (`?password=a@b`) made everything before it the user-info.
    A host name never contains `@`, so the last one before the query ends the user-info.
    A `?` in a password must be written `%3F`.

    Raises:
        ArgumentError, ValueError: as `make_url`, for text that is not a URL.
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        return make_url(text)
    head, has_query, query = rest.partition("?")
    # A SQLite path (`sqlite:////dir/me@home/x.db`) has no user-info, whatever its '@'s.
    userinfo_end = -1 if head.startswith("/") else head.rfind("@")
    # Without its user-info and query, `head` has nothing make_url could split wrongly.
    url = make_url(f"{scheme}://{head[userinfo_end + 1 :]}")
    if userinfo_end >= 0:
        username, has_password, password = head[:userinfo_end].partition(":")
        # make_url percent-decodes the user name and password; so does this.
        url = url.set(
            username=unquote(username) or None,
            password=unquote(password) if has_password else None,
        )
    if has_query:
        parameters: dict[str, str | tuple[str, ...]] = {}
        for name, value in parse_qsl(query):
            earlier = parameters.get(name)
            if earlier is None:
                parameters[name] = value
            else:
                as_tuple = earlier if isinstance(earlier, tuple) else (earlier,)
                parameters[name] = (*as_tuple, value)
        url = url.set(query=parameters)
    return url


def to_async_url(raw_url: str) -> URL:
    """Parse a user-supplied URL and select the async driver for its backend.

    Raises:
        DatabaseUrlError: the URL cannot be parsed or names an unsupported backend.
    """
    text = raw_url.strip()
    if not text:
        raise DatabaseUrlError("The database URL is empty.")
    if "\x00" in text:
        raise DatabaseUrlError("The database URL contains a NUL character.")
    if "://" not in text:
        # A bare path means a SQLite file, the embedded default.
        text = f"sqlite:///{text}"
    try:
        url = parse_url(text)
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(
            f"Cannot parse the database URL {redact_url(text)!r}: expected a form like "
            "postgresql://user:password@host:5432/dbname or sqlite:///path/to/file.db "
            "(write a '?' in the password as %3F)."
        ) from None
    driver = url.drivername
    if driver in _POSTGRES_DRIVERS:
        return url.set(drivername="postgresql+psycopg")
    if driver in _SQLITE_DRIVERS:
        if url.username or url.password or url.host or url.port:
            raise DatabaseUrlError(
                f"The SQLite URL {redact_url(text)!r} names a server: a SQLite database is a "
                "file, written sqlite:///relative/path.db or sqlite:////absolute/path.db "
                "(three slashes, then the path)."
            )
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(
        f"Unsupported database backend {driver!r} in {redact_url(text)!r}: "
        "fast-agent-db supports postgresql:// (psycopg 3) and sqlite:///FILE."
    )


def redact_url(url: str | URL) -> str:
    """The URL with its password and secret query values replaced by `***`, safe for messages
    and logs. Text that is not a URL is shown with everything that could be a secret hidden."""
    if isinstance(url, str):
        try:
            url = parse_url(url.strip())
        except (ArgumentError, ValueError):
            return _redact_unparseable(url)
    query = {
        name: (_SENTINEL if is_secret_parameter(name) else value)
        for name, value in url.query.items()
    }
    rendered = url.set(query=query).render_as_string(hide_password=True)
    return rendered.replace(_SENTINEL, REDACTED)


def _redact_unparseable(text: str) -> str:
    # Which part is the password cannot be told: with an '@' anywhere, all of it is hidden.
    scheme, separator, rest = text.partition("://")
    if separator and "@" in rest:
        return f"{scheme}://{REDACTED}"
    return _QUERY_PARAMETER.sub(
        lambda match: (
            f"{match.group('name')}={REDACTED}"
            if is_secret_parameter(match.group("name"))
            else match.group(0)
        ),
        text,
    )


def url_secrets(url: URL) -> list[str]:
    """The secret values a URL carries: its password and its secret query values."""
    secrets = [str(url.password)] if url.password else []
    for name, value in url.query.items():
        if is_secret_parameter(name):
            values = value if isinstance(value, tuple) else (value,)
            secrets.extend(item for item in values if item)
    return secrets


def redact_secrets(text: str, url: URL | str) -> str:
    """`text` (a driver's message, say) with every secret of `url` replaced by `***`."""
    if isinstance(url, str):
        try:
            url = parse_url(url.strip())
        except (ArgumentError, ValueError):
            return text
    # Longest first, so a secret containing another is hidden whole.
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)

"""Telling a database that cannot be reached from one that refuses what it was sent.

Events that failed for want of a connection are kept and tried again later; events the
database refused would fail the same way forever, so they are set aside (quarantined) instead.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from mcp_agent.db.errors import DatabaseUnavailableError
from mcp_agent.db.events.redaction import redact_text

# SQLAlchemy wraps the driver's errors for statements it runs; the COPY of PostgreSQL batches
# runs on the driver's own connection, so psycopg's errors arrive unwrapped.
_CONNECTIVITY = (
    sa_exc.OperationalError,  # refused, reset, "database is locked", server shutting down
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came free
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    psycopg.OperationalError,  # includes the server shutting down, and a lost connection
    psycopg.InterfaceError,
    OSError,  # sockets, and TimeoutError
    DatabaseUnavailableError,  # our own words for the above
)


def is_connectivity_failure(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (worth retrying as it is)."""
    return isinstance(error, _CONNECTIVITY)


def describe_failure(error: BaseException) -> str:
    """One line saying why, without SQL, parameters or row values (the driver's first line;
    PostgreSQL puts a refused row's values on the lines after it), secrets redacted."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    detail = redact_text(lines[0]) if lines else ""
    return f"{type(original).__name__}: {detail}" if detail else type(original).__name__

"""Errors raised by fast-agent-db.

Every message names what is wrong and where, and never contains a database password: URLs are
passed through `redact_url` before they reach a message.

    FastAgentDbError
    ├── DatabaseUrlError          a URL that cannot be parsed or names an unsupported backend
    ├── InputError                a value the database cannot hold (too long, NUL, out of range)
    ├── DatabaseUnavailableError  the server or file cannot be reached or opened
    │   ├── DatabaseLockedError   a SQLite file stayed locked by another writer too long
    │   └── ConnectionLostError   the connection broke while a command was working
    ├── DatabaseRefusedError      the database refused a statement (a value, a constraint)
    ├── SchemaOutOfDateError      the database schema is not at the revision this code needs
    ├── UnknownValueError         an id or filter value that names nothing in the database
    ├── SessionError              a session operation that cannot be done (branches, agents)
    ├── DuplicateRunError         a run submitted again with an idempotency key already used
    ├── RunEndedError             an operation on a run that has ended (cancel of a completed run)
    ├── ConfigError               invalid configuration input, every problem listed
    └── DefinitionError           agent definitions that cannot be stored or run
"""

from __future__ import annotations

from typing import Literal

#: Why a database's schema is not the one this code needs:
#: "empty"   - no tables at all (created automatically unless the caller asked not to),
#: "foreign" - other tables but no fast-agent-db schema (never migrated behind the user's back),
#: "older"   - a revision of our chain behind head (needs an explicit `db upgrade`),
#: "newer"   - a revision this code does not know (written by a later fast-agent-db).
SchemaState = Literal["empty", "foreign", "older", "newer"]


class FastAgentDbError(Exception):
    """Base class of every error fast-agent-db raises on purpose."""


class DatabaseUrlError(FastAgentDbError, ValueError):
    """The database URL is malformed or names a backend we do not support."""


class InputError(FastAgentDbError, ValueError):
    """A value refused at the boundary, before it reaches the database: text longer than its
    column, a NUL character, a number outside the column's range. The message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DatabaseUnavailableError(FastAgentDbError):
    """The database could not be reached or opened."""


class DatabaseLockedError(DatabaseUnavailableError):
    """A SQLite file stayed locked by another process's write for longer than the busy timeout."""


class ConnectionLostError(DatabaseUnavailableError):
    """The connection to the database broke while a command was using it."""


class DatabaseRefusedError(FastAgentDbError):
    """The database refused a statement: a value it cannot hold, a constraint it enforces."""


class SchemaOutOfDateError(FastAgentDbError):
    """The database schema is behind (or ahead of) the revision this code was built for."""

    def __init__(
        self, message: str, *, current: str | None, required: str, state: SchemaState
    ) -> None:
        super().__init__(message)
        self.current = current
        self.required = required
        self.state: SchemaState = state


class UnknownValueError(FastAgentDbError, LookupError):
    """A value the user typed names nothing in the database: an id no row has (or a prefix of
    several), a filter value no row matches. The message says which, and what there is."""


class SessionError(FastAgentDbError):
    """A session operation that cannot be done; the message says why."""


class DuplicateRunError(FastAgentDbError):
    """A run was submitted with an idempotency key its caller used before: nothing was queued.
    `existing_run_id` is the run the key names."""

    def __init__(self, message: str, *, existing_run_id: str) -> None:
        super().__init__(message)
        self.existing_run_id = existing_run_id


class RunEndedError(FastAgentDbError):
    """The run has ended (completed, failed or cancelled), so it cannot be changed."""


class CallNotStartedError(FastAgentDbError, LookupError):
    """A call's end names no recorded start (on PostgreSQL: a start lost in a server crash,
    see migration 0006); nothing of the end was stored."""


class LeaseLostError(FastAgentDbError):
    """A worker wrote for a run whose lease it no longer holds: the run's lease expired and
    another claim moved its epoch on (the worker stalled, or lost the database for longer
    than the lease). The write was refused; the run is another worker's now."""


class RunCancelledError(FastAgentDbError):
    """The run was cancelled; it stops at the call boundary where this is raised."""


class ConfigError(FastAgentDbError):
    """Invalid configuration input; `problems` lists each one with its file and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class DefinitionError(FastAgentDbError):
    """Definitions that cannot be stored or run; `problems` names each agent and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid agent definitions:\n  " + "\n  ".join(problems))
        self.problems = problems

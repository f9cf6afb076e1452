"""Run the Alembic migrations shipped in the package, without an alembic.ini.

The migrations live in `migrations/` at the top of the source tree; the wheel carries them as
`mcp_agent/db/migrations`, so an installed package with no checkout can upgrade a database.
Alembic is synchronous, so the runner is too: async callers use `asyncio.to_thread`.

Every schema change runs under the migration lock, so processes that open one fresh database
at once, or an explicit `db upgrade` racing one of them, migrate it once: on PostgreSQL a
transaction-level advisory lock taken inside the migration transaction, on a SQLite file an
exclusive `flock` on the sibling file `<database file>.migrate.lock`.

Every schema change is one transaction on both backends: a migration that fails leaves the
database as it was. On SQLite it runs the way SQLite documents for schema changes: foreign keys
unenforced for the transaction and checked before it commits (see `foreign_keys_unenforced`).

Before a downgrade deletes data it can say what: `MigrationRunner.plan_downgrade`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RangeNotAncestorError, RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, func, select, table, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mcp_agent.db.engine import (
    SQLITE_BEGIN_MODE,
    create_sync_database_engine,
    describe_connection_error,
    driver_message,
)
from mcp_agent.db.errors import DatabaseUnavailableError, FastAgentDbError, SchemaOutOfDateError
from mcp_agent.db.models import VERSION_TABLE, Base
from mcp_agent.db.urls import redact_url, sqlite_file

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent first use of one SQLite file is unguarded.
    fcntl = None  # type: ignore[assignment]

_T = TypeVar("_T")

#: The PostgreSQL advisory lock key that serialises schema changes. Advisory locks are scoped
#: to one database, so a fixed key only ever contends with migrations of the same database.
#: The value is the ASCII of "fa-db-mg" read as a (positive) 64-bit integer.
MIGRATION_LOCK_KEY = 0x66612D64622D6D67
#: Appended to a SQLite file's name for the lock file held while its schema changes.
SQLITE_LOCK_SUFFIX = ".migrate.lock"


def migrations_directory() -> Path:
    """Where the migration scripts are: inside the installed package, or the checkout's."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "migrations", package_dir.parents[2] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FastAgentDbError(
        f"The migration scripts are missing: looked in {package_dir / 'migrations'} and "
        f"{package_dir.parents[2] / 'migrations'}. Reinstall fast-agent-db."
    )


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@cache
def head_revision() -> str:
    """The revision this code needs (the single head of the linear chain)."""
    head = _script_directory().get_current_head()
    if head is None:
        raise FastAgentDbError("The migration chain has no head revision.")
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision id in our migration scripts.

    Compared exactly: Alembic's own lookup also resolves unique prefixes, which would take a
    later release's revision "0004a" for ours.
    """
    return frozenset(script.revision for script in _script_directory().walk_revisions())


def newer_schema_error(display_url: str, current: str) -> SchemaOutOfDateError:
    """The database was migrated by a later fast-agent-db: upgrading it here cannot help."""
    required = head_revision()
    return SchemaOutOfDateError(
        f"The database {display_url} has schema revision {current}, which is newer than this "
        f"fast-agent-db (it knows revisions up to {required}). Upgrade fast-agent-db, or use "
        "another database.",
        current=current,
        required=required,
        state="newer",
    )


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, or None when it was never migrated."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def database_tables(connection: Connection) -> list[str]:
    """The tables and views a migration would land among, sorted by name.

    PostgreSQL: those in the schemas on the connection's search_path (unqualified DDL creates
    in the first of them). SQLite: those of the main database, without its internal tables.
    """
    if connection.dialect.name == "postgresql":
        query = text(
            "SELECT c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY (current_schemas(false)) "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "ORDER BY c.relname"
        )
    else:
        query = text(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    return list(connection.execute(query).scalars())


def tables_besides_ours(connection: Connection) -> list[str]:
    """The tables that make a database without our schema not empty.

    Our version table is ignored: `db downgrade base` leaves it behind, empty, and a database
    holding only that is where the chain starts.
    """
    return [name for name in database_tables(connection) if name != VERSION_TABLE]


def create_schema_if_empty_on(connection: Connection) -> str | None:
    """Migrate to head on `connection` if its database has no tables; the revision after.

    The caller holds the migration lock (or needs none) and owns the transaction: re-checking
    here, under the lock, is what makes the second of two racing processes a no-op.
    """
    _take_advisory_lock(connection)
    revision = current_revision(connection)
    if revision is None and not tables_besides_ours(connection):
        _run_alembic(command.upgrade, connection, "head")
        revision = current_revision(connection)
    return revision


def _take_advisory_lock(connection: Connection) -> None:
    """On PostgreSQL, wait for the migration lock; it is released when the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _run_alembic(
    alembic_command: Callable[[Config, str], None], connection: Connection, revision: str
) -> None:
    try:
        alembic_command(alembic_config(connection), revision)
    except CommandError as error:
        raise FastAgentDbError(f"Migration to {revision!r} failed: {error}") from None


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Compare only our own tables, and not the partitions of the event log."""
    if type_ == "table" and name is not None:
        return name.startswith("fa_") and not name.startswith("fa_events_")
    return True


class MigrationCheckError(FastAgentDbError):
    """A migration would leave the database inconsistent; it is rolled back."""


@contextmanager
def foreign_keys_unenforced(connection: Connection) -> Iterator[None]:
    """On SQLite, leave foreign keys unenforced during the transaction the caller begins next.

    SQLite alters a table by copying it (Alembic's batch mode): the old table is dropped, and
    with enforcement on, a drop first deletes every row, so other tables' ON DELETE CASCADE and
    SET NULL rules fire and RESTRICT refuses (a forked session's parent, say). SQLite's own
    procedure for schema changes: enforcement off before the transaction (the pragma is a no-op
    inside one), `check_foreign_keys` before it commits, enforcement on after.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    # The driver's connection: a statement through SQLAlchemy would begin the transaction first.
    driver_connection = connection.connection.driver_connection
    driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver_connection.execute("PRAGMA foreign_keys = ON")


def check_foreign_keys(connection: Connection) -> None:
    """On SQLite with enforcement off, refuse (so roll back) a schema change that leaves rows
    referring to rows or tables that no longer exist."""
    if connection.dialect.name != "sqlite":
        return
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
        return  # enforced all along: nothing can be left dangling
    dangling = Counter(
        (child, parent)
        for child, _rowid, parent, _key in connection.exec_driver_sql("PRAGMA foreign_key_check")
    )
    if dangling:
        raise MigrationCheckError(
            "it would leave "
            + ", ".join(
                f"{count} row{'' if count == 1 else 's'} of {child} referring to rows of "
                f"{parent} that would no longer exist"
                for (child, parent), count in sorted(dangling.items())
            )
        )


#: How Alembic's batch mode names the copy of a table it is altering on SQLite.
_BATCH_COPY_PREFIX = "_alembic_tmp_"


def remove_stale_batch_copies(connection: Connection) -> None:
    """Drop the copies of our tables left by a batch operation that failed before migrations
    were transactional on SQLite; such a copy makes the next batch operation on its table fail.

    A copy is only dropped while its table exists (the copy is then stale). A copy whose table
    is gone may hold the only rows there are: that is refused, naming both.
    """
    if connection.dialect.name != "sqlite":
        return
    names = set(database_tables(connection))
    for name in sorted(names):
        original = name.removeprefix(_BATCH_COPY_PREFIX)
        if name == original or not original.startswith("fa_"):
            continue
        if original not in names:
            raise MigrationCheckError(
                f"the table {name} is a copy of {original}, which no longer exists: an earlier "
                f"migration stopped half way. Check it and rename it to {original} (or drop "
                "it), then run the command again"
            )
        connection.exec_driver_sql(f'DROP TABLE "{name}"')


@dataclass(frozen=True)
class DataLoss:
    """Data a downgrade deletes: `count` rows or values (`unit`) of `what`; `count` is None
    when the migration does not say."""

    what: str
    count: int | None
    unit: str = "row"

    def __str__(self) -> str:
        if self.count is None:
            return self.what
        return f"{self.what}: {self.count} {self.unit}{'' if self.count == 1 else 's'}"


@dataclass(frozen=True)
class DowngradePlan:
    """What a downgrade from `current` to `target` (None: no schema) deletes."""

    current: str | None
    target: str | None
    losses: list[DataLoss] = field(default_factory=list)

    @property
    def deletes_data(self) -> bool:
        return bool(self.losses)

    def describe(self) -> str:
        return "; ".join(str(loss) for loss in self.losses) or "no data"

    def covered_by(self, confirmed: DowngradePlan) -> bool:
        """Whether this deletes nothing beyond `confirmed` (the plan someone agreed to)."""
        if (self.current, self.target) != (confirmed.current, confirmed.target):
            return False
        agreed = {loss.what: loss.count for loss in confirmed.losses}
        return all(
            loss.what in agreed
            and (
                loss.count == agreed[loss.what]
                if loss.count is None or agreed[loss.what] is None
                else loss.count <= agreed[loss.what]
            )
            for loss in self.losses
        )


def _downgrade_steps(current: str | None, target: str) -> list[Script]:
    """The migrations a downgrade from `current` to `target` runs, newest first."""
    scripts = _script_directory()
    try:
        if target != "base" and not target.startswith(("-", "+")):
            scripts.get_revision(target)  # Alembic's clearest message for an unknown id
        if current is None:
            if target == "base":
                return []
            raise FastAgentDbError(
                f"Cannot downgrade to {target!r}: the database has no fast-agent-db schema"
            )
        return list(scripts.iterate_revisions(current, target))
    except RangeNotAncestorError:
        raise FastAgentDbError(
            f"Cannot downgrade to {target!r}: the database is at {current}, which is not above "
            f"it (to go up, use `fast-agent-db db upgrade {target}`)"
        ) from None
    except (CommandError, RevisionError) as error:
        raise FastAgentDbError(f"Cannot downgrade to {target!r}: {error}") from None


def _row_counts(connection: Connection) -> list[DataLoss]:
    """Every table of ours that holds rows, with their number."""
    return [
        DataLoss(name, count)
        for name in database_tables(connection)
        if name != VERSION_TABLE and include_name(name, "table", None)
        for count in [connection.scalar(select(func.count()).select_from(table(name)))]
        if count
    ]


def plan_downgrade_on(connection: Connection, target: str, display_url: str) -> DowngradePlan:
    """What downgrading the database on `connection` to `target` deletes.

    To base, every table goes: the plan is every table holding rows. Otherwise each migration
    undone says what its downgrade deletes, by a `downgrade_losses(connection)` function
    beside its `downgrade()` returning (what, count, unit) triples; one that has none is
    listed as deleting what it does not say (and so needs confirming).
    """
    current = current_revision(connection)
    if current is not None and current not in known_revisions():
        raise newer_schema_error(display_url, current)
    steps = _downgrade_steps(current, target)
    if not steps:
        return DowngradePlan(current, current)
    after = steps[-1].down_revision
    assert after is None or isinstance(after, str), "the chain is linear"
    if after is None:
        return DowngradePlan(current, None, _row_counts(connection))
    losses: list[DataLoss] = []
    for step in steps:
        measure = getattr(step.module, "downgrade_losses", None)
        if measure is None:
            unstated = f"whatever revision {step.revision}'s downgrade deletes (it does not say)"
            losses.append(DataLoss(unstated, None))
            continue
        losses.extend(
            DataLoss(what, count, unit) for what, count, unit in measure(connection) if count
        )
    return DowngradePlan(current, after, losses)


class MigrationRunner:
    """Upgrade, downgrade and inspect one database's schema."""

    def __init__(self, raw_url: str) -> None:
        self._raw_url = raw_url
        self._engine = create_sync_database_engine(raw_url)

    def _with_connection(self, work: Callable[[Connection], _T], *, transaction: bool) -> _T:
        try:
            connection = self._engine.connect()
        except (OperationalError, DBAPIError) as error:
            raise describe_connection_error(self._engine.url, error) from None
        with connection:
            if not transaction:
                return work(connection)
            # A migration reads before it writes: on SQLite, taking the write lock at BEGIN
            # waits out other writers (busy_timeout) instead of failing at the first write
            # when one of them committed since the read.
            connection.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"})
            with foreign_keys_unenforced(connection), connection.begin():
                return work(connection)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Hold the SQLite file's migration lock; a no-op for PostgreSQL and in-memory SQLite.

        The lock file is left in place: removing it would let a process that opened it just
        before lock a file nobody else can see any more.
        """
        path = sqlite_file(self._engine.url) if self._engine.dialect.name == "sqlite" else None
        if path is None or fcntl is None:
            yield
            return
        lock_path = path.with_name(path.name + SQLITE_LOCK_SUFFIX)
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"Cannot create the migration lock file {lock_path} for the SQLite database "
                f"{redact_url(self._raw_url)}: {error.strerror or error}"
            ) from None
        try:
            # Blocking: a migration holds it for seconds at most.
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def upgrade(self, revision: str = "head") -> None:
        """Upgrade to `revision` in one transaction, under the migration lock."""
        self._run_command(command.upgrade, revision)

    def downgrade(self, revision: str, *, confirmed: DowngradePlan | None = None) -> None:
        """Downgrade to `revision` (`base` removes every fast-agent-db table).

        With `confirmed` (a plan someone agreed to), the downgrade is refused, changing nothing,
        when it would now delete more than that plan said: rows written since, say.
        """

        def check(connection: Connection) -> None:
            if confirmed is None:
                return
            plan = plan_downgrade_on(connection, revision, redact_url(self._raw_url))
            if not plan.covered_by(confirmed):
                raise FastAgentDbError(
                    f"The downgrade of {redact_url(self._raw_url)} to {revision!r} would now "
                    f"delete more than was confirmed ({plan.describe()}); nothing was changed. "
                    "Run the command again to see what it deletes now."
                )

        self._run_command(command.downgrade, revision, before=check)

    def plan_downgrade(self, revision: str) -> DowngradePlan:
        """What `downgrade(revision)` would delete, read without changing anything."""
        return self._with_connection(
            lambda connection: plan_downgrade_on(connection, revision, redact_url(self._raw_url)),
            transaction=False,
        )

    def create_schema_if_empty(self) -> str | None:
        """Migrate to head if the database has no tables at all; the revision after.

        Under the migration lock, so of several processes opening one fresh database at once
        the first creates the schema and the others find it current. A database with other
        tables, or at any revision, is left as it is.
        """
        with self._file_lock(), self._failures_described("Creating the schema"):
            return self._with_connection(create_schema_if_empty_on, transaction=True)

    def _run_command(
        self,
        alembic_command: Callable[[Config, str], None],
        revision: str,
        *,
        before: Callable[[Connection], None] | None = None,
    ) -> None:
        def run(connection: Connection) -> None:
            _take_advisory_lock(connection)
            current = current_revision(connection)
            if current is not None and current not in known_revisions():
                raise newer_schema_error(redact_url(self._raw_url), current)
            if before is not None:
                before(connection)
            _run_alembic(alembic_command, connection, revision)

        with self._file_lock(), self._failures_described(f"Migration to {revision!r}"):
            self._with_connection(run, transaction=True)

    @contextmanager
    def _failures_described(self, what: str) -> Iterator[None]:
        """A database error mid-migration (rolled back) as a FastAgentDbError naming the place.

        Run paths create the schema on first use, so a missing CREATE privilege, say, must read
        as a fast-agent-db error and not as a driver traceback.
        """
        try:
            yield
        except MigrationCheckError as error:
            raise FastAgentDbError(
                f"{what} failed on {redact_url(self._raw_url)} and was rolled back: {error}"
            ) from None
        except DBAPIError as error:
            detail = driver_message(error, self._engine.url)
            raise FastAgentDbError(
                f"{what} failed on {redact_url(self._raw_url)} and was rolled back: {detail}"
            ) from error

    def current(self) -> str | None:
        """The database's revision, or None for a database never migrated."""
        return self._with_connection(current_revision, transaction=False)

    def drift(self) -> list[Any]:
        """Differences between the migrated schema and the models (empty when they agree)."""

        def compare(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection,
                opts={
                    "version_table": VERSION_TABLE,
                    "compare_type": True,
                    "include_name": include_name,
                },
            )
            return list(compare_metadata(context, Base.metadata))

        return self._with_connection(compare, transaction=False)

    def dispose(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> MigrationRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

"""The turn store on PostgreSQL and SQLite.

PostgreSQL: a call's start is one call of `fa_start_call` and its end one of `fa_end_call`
(migrations 0005, 0006 and 0009), each a single statement in autocommit on a connection of the
runtime's write pool (`write_pool.py`): two round trips per call, no BEGIN/COMMIT, no SQL
compiled per call; the start's commit does not wait for the disk (see 0006).
SQLite (no stored functions): the same statements the function runs, as one transaction run
in one hop on the connection's own thread (aiosqlite runs every sqlite3 call on a thread of
its own; one hop per statement through the async stack cost more than the statements), values
bound with the columns' own SQLAlchemy types, so rows are stored exactly as the ORM stores
them.

A durable run's calls are fenced (runs/journal.py): with a fence, the start and the end first
check, holding the run's row lock, that the run is still running at the fence's lease epoch
(PostgreSQL: inside the functions, SQLSTATE FA003 when refused; SQLite: a no-op UPDATE of the
run's row, which takes the write lock, in the same transaction) and raise `LeaseLostError`
storing nothing; the end stores the run's `call` step in the transaction of its turn. Without
a fence nothing more is done.

Errors of the raw driver are raised as SQLAlchemy's `DBAPIError` family (as every other
store's), so the callers' and the CLI's handling of database errors applies unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.conversations.codec import (
    encode_multipart,
    encode_provider,
    escape_nul,
    escape_unstorable,
)
from mcp_agent.db.conversations.sql import Lineage, SessionError
from mcp_agent.db.errors import CallNotStartedError, LeaseLostError
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models import ExecutionRow, MessageRow, UsageTurnRow
from mcp_agent.db.models.runs import RunStepRow
from mcp_agent.db.runs.journal import Fence, JournalStep, lease_lost
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.turns.base import CallEnd

_T = TypeVar("_T")

#: SQLSTATE `fa_end_call` raises for a missing session (or ancestor of one).
_NO_SESSION_SQLSTATE = "FA001"
#: SQLSTATE `fa_end_call` raises when the call has no running row.
_NOT_STARTED_SQLSTATE = "FA002"
#: SQLSTATE `fa_start_call` and `fa_end_call` raise when a durable run's fence is refused.
_LEASE_LOST_SQLSTATE = "FA003"

_START_CALL = (
    "SELECT fa_start_call(%s, %s, %s, %s, %s::integer, %s, %s::timestamptz, %s, %s, %s::jsonb)"
)
_END_CALL = "SELECT fa_end_call(%s::jsonb)"


def _cost(cost: Decimal | None) -> str | None:
    return None if cost is None else str(cost)


def _totals_values(totals: UsageTotals) -> dict[str, Any]:
    return {
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_read_tokens": totals.cache_read_tokens,
        "cache_write_tokens": totals.cache_write_tokens,
        "reasoning_tokens": totals.reasoning_tokens,
        "cost": totals.cost,
        "model": ", ".join(sorted(totals.models))[:200] or None,
    }


def _usage_values(execution_id: str, turn: UsageTurn) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "provider": turn.provider,
        "model": turn.model,
        "input_tokens": turn.input_tokens,
        "output_tokens": turn.output_tokens,
        "cache_read_tokens": turn.cache_read_tokens,
        "cache_write_tokens": turn.cache_write_tokens,
        "reasoning_tokens": turn.reasoning_tokens,
        "tool_use_tokens": turn.tool_use_tokens,
        "cost": turn.cost,
        "raw_usage": turn.raw_usage,
    }


def _message_document(message: NewMessage) -> dict[str, Any]:
    return {
        "role": message.content.role,
        "content": encode_multipart(message.content),
        "provider": message.provider,
        "provider_messages": (
            None
            if message.provider_messages is None
            else escape_nul(encode_provider(message.provider_messages))
        ),
        "model": message.model,
        "execution_id": message.execution_id,
    }


def _turn_document(turn: PendingTurn | None) -> dict[str, Any] | None:
    if turn is None or not turn.messages:
        return None
    return {
        "session_id": turn.session_id,
        "agent_name": turn.agent_name,
        "messages": [_message_document(message) for message in turn.messages],
    }


def _fence_document(fence: Fence | None) -> dict[str, Any] | None:
    if fence is None:
        return None
    return {"run_id": fence.run_id, "lease_epoch": fence.lease_epoch}


def _step_document(step: JournalStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {
        "run_id": step.run_id,
        "step_key": step.step_key,
        "kind": step.kind,
        "agent_name": step.agent_name,
        "lease_epoch": step.lease_epoch,
        # NUL and lone surrogates escaped as in messages (PostgreSQL's jsonb refuses NUL).
        "response": escape_unstorable(step.response),
    }


def call_end_document(end: CallEnd) -> str:
    """`end` as the JSON `fa_end_call` takes (see migrations 0005 and 0009)."""
    totals = None
    if end.totals is not None:
        totals = _totals_values(end.totals)
        totals["cost"] = _cost(end.totals.cost)
    usage = []
    for turn in end.usage:
        values = _usage_values(end.execution_id, turn)
        values["cost"] = _cost(turn.cost)
        usage.append(values)
    return json.dumps(
        {
            "execution_id": end.execution_id,
            "status": end.status,
            "finished_at": end.finished_at.isoformat(),
            "error": end.error,
            "totals": totals,
            "usage": usage,
            "turn": _turn_document(end.turn),
            "fence": _fence_document(end.fence),
            "step": _step_document(end.step),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


_SQLITE_START_COLUMNS = (
    "execution_id",
    "parent_execution_id",
    "session_id",
    "agent_name",
    "agent_version_id",
    "operation",
    "started_at",
    "worker_id",
    "settings_source",
    "run_id",
)
_SQLITE_STEP_COLUMNS = (
    "run_id",
    "step_key",
    "kind",
    "agent_name",
    "lease_epoch",
    "response",
    "body",
    "created_at",
)
_SQLITE_MESSAGE_COLUMNS = (
    "session_id",
    "agent_name",
    "sequence",
    "role",
    "content",
    "provider",
    "provider_messages",
    "is_prompt",
    "model",
    "execution_id",
    "created_at",
)
_SQLITE_USAGE_COLUMNS = (
    "execution_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "tool_use_tokens",
    "cost",
    "raw_usage",
    "created_at",
)
_SQLITE_TOTALS_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "model",
)


class _SqliteBinder:
    """Values of a row as SQLAlchemy binds them for SQLite (timestamps, JSON, decimals)."""

    def __init__(self, table: Any, columns: Sequence[str], dialect: Any) -> None:
        self.columns = tuple(columns)
        self._processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]

    def bind(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for process, value in zip(
                self._processors, (values[name] for name in self.columns), strict=True
            )
        )

    def insert(self, table: str) -> str:
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {table} ({', '.join(self.columns)}) VALUES ({marks})"


def _sqlite_lineage(connection: sqlite3.Connection, session_id: str, now: str) -> Lineage:
    """As `conversations.sql._lineage(lock=True)`, on the sqlite3 connection: the UPDATE takes
    the database's write lock first, so the sequence read after it is the latest."""
    lineage: Lineage = []
    # fetchall: a RETURNING statement is finished only once its rows are all read.
    locked = connection.execute(
        "UPDATE fa_sessions SET updated_at = ? WHERE session_id = ?"
        " RETURNING parent_session_id, branch_point_message_id",
        (now, session_id),
    ).fetchall()
    row = locked[0] if locked else None
    current: str | None = session_id
    cut: int | None = None
    while row is not None:
        lineage.append((current, cut))  # type: ignore[arg-type]
        parent, branch_point = row
        if branch_point is not None:
            cut = branch_point if cut is None else min(cut, branch_point)
        if parent is None:
            return lineage
        current = parent
        row = connection.execute(
            "SELECT parent_session_id, branch_point_message_id FROM fa_sessions"
            " WHERE session_id = ?",
            (current,),
        ).fetchone()
    if not lineage:
        raise SessionError(f"no session {session_id!r}")
    raise SessionError(f"session {current!r}, an ancestor of {session_id!r}, is missing")


class SqlTurnStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime
        self._postgres = runtime.dialect == "postgresql"
        if not self._postgres:
            dialect = runtime.engine.dialect
            executions = ExecutionRow.__table__
            self._start_row = _SqliteBinder(executions, _SQLITE_START_COLUMNS, dialect)
            self._message_row = _SqliteBinder(
                MessageRow.__table__, _SQLITE_MESSAGE_COLUMNS, dialect
            )
            self._usage_row = _SqliteBinder(UsageTurnRow.__table__, _SQLITE_USAGE_COLUMNS, dialect)
            self._totals = _SqliteBinder(executions, _SQLITE_TOTALS_COLUMNS, dialect)
            self._ended = _SqliteBinder(executions, ("finished_at",), dialect)
            self._step_row = _SqliteBinder(RunStepRow.__table__, _SQLITE_STEP_COLUMNS, dialect)

    @asynccontextmanager
    async def _driver_connection(self) -> AsyncIterator[Any]:
        """A connection of the runtime's write pool (autocommit): one statement, one round
        trip. psycopg's errors are raised as SQLAlchemy's, as the other stores raise them."""
        import psycopg

        assert self._runtime.write_pool is not None
        try:
            async with self._runtime.write_pool.connection() as driver:
                yield driver
        except psycopg.Error as error:
            raise DBAPIError.instance(None, None, error, psycopg.Error) from error

    async def start_call(self, start: ExecutionStart, *, fence: Fence | None = None) -> None:
        if self._postgres:
            fence_document = _fence_document(fence)
            async with self._fenced_errors(), self._driver_connection() as driver:
                await driver.execute(
                    _START_CALL,
                    (
                        start.execution_id,
                        start.parent_execution_id,
                        start.session_id,
                        start.agent_name,
                        start.agent_version_id,
                        start.operation,
                        start.started_at,
                        start.worker_id,
                        start.settings_source,
                        None if fence_document is None else json.dumps(fence_document),
                    ),
                )
            return
        row = self._start_row.bind(
            {**dataclasses.asdict(start), "run_id": None if fence is None else fence.run_id}
        )
        statement = (
            f"INSERT INTO fa_executions ({', '.join(_SQLITE_START_COLUMNS)}, status,"
            " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
            f" reasoning_tokens) VALUES ({', '.join('?' for _ in _SQLITE_START_COLUMNS)},"
            " 'running', 0, 0, 0, 0, 0)"
        )

        def write(connection: sqlite3.Connection) -> None:
            with _sqlite_transaction(connection):
                if fence is not None:
                    _sqlite_check_fence(connection, fence)
                connection.execute(statement, row)

        await self._on_sqlite_thread(write)

    async def end_call(self, end: CallEnd) -> list[int]:
        if self._postgres:
            return await self._end_call_postgres(end)
        return await self._end_call_sqlite(end)

    async def _end_call_postgres(self, end: CallEnd) -> list[int]:
        import psycopg

        document = call_end_document(end)
        try:
            async with self._driver_connection() as driver:
                cursor = await driver.execute(_END_CALL, (document,))
                row = await cursor.fetchone()
        except DBAPIError as error:
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate == _LEASE_LOST_SQLSTATE:
                raise _lease_lost_error(error) from None
            if sqlstate in (_NO_SESSION_SQLSTATE, _NOT_STARTED_SQLSTATE):
                assert isinstance(error.orig, psycopg.Error)
                reason = error.orig.diag.message_primary or sqlstate
                if sqlstate == _NO_SESSION_SQLSTATE:
                    raise SessionError(reason) from None
                raise CallNotStartedError(reason) from None
            raise
        first = row[0] if row else None
        if first is None or end.turn is None:
            return []
        return list(range(first, first + len(end.turn.messages)))

    @asynccontextmanager
    async def _fenced_errors(self) -> AsyncIterator[None]:
        """FA003 (a refused fence) raised as LeaseLostError."""
        try:
            yield
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _LEASE_LOST_SQLSTATE:
                raise _lease_lost_error(error) from None
            raise

    async def _on_sqlite_thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` with the pooled sqlite3 connection, on its aiosqlite thread: one hop."""
        async with self._runtime.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            driver = pooled.driver_connection  # aiosqlite.Connection
            try:
                # aiosqlite's queue to its thread: the one way to run several sqlite3 calls in
                # one hop (its public methods hop once each).
                return await driver._execute(work, driver._conn)
            except sqlite3.Error as error:
                raise DBAPIError.instance(None, None, error, sqlite3.Error) from error

    async def _end_call_sqlite(self, end: CallEnd) -> list[int]:
        ended = self._ended.bind({"finished_at": end.finished_at})[0]
        totals = self._totals.bind(_totals_values(end.totals)) if end.totals is not None else None
        usage = [
            self._usage_row.bind(
                {**_usage_values(end.execution_id, turn), "created_at": end.finished_at}
            )
            for turn in end.usage
        ]
        turn = end.turn if end.turn is not None and end.turn.messages else None
        messages = []
        if turn is not None:
            messages = [
                {
                    **_message_document(message),
                    "session_id": turn.session_id,
                    "agent_name": turn.agent_name,
                    "is_prompt": False,
                    "created_at": end.finished_at,
                }
                for message in turn.messages
            ]
        insert_message = self._message_row.insert("fa_messages")
        insert_usage = self._usage_row.insert("fa_usage_turns")
        update_end = (
            "UPDATE fa_executions SET status = ?, finished_at = ?, error = ?"
            + ("".join(f", {name} = ?" for name in _SQLITE_TOTALS_COLUMNS) if totals else "")
            + " WHERE execution_id = ?"
        )
        end_values = (end.status, ended, end.error, *(totals or ()), end.execution_id)
        fence = end.fence
        step = None
        if end.step is not None:
            step = self._step_row.bind(
                {
                    "run_id": end.step.run_id,
                    "step_key": end.step.step_key,
                    "kind": end.step.kind,
                    "agent_name": end.step.agent_name,
                    "lease_epoch": end.step.lease_epoch,
                    "response": escape_unstorable(end.step.response),
                    "body": end.step.body,
                    "created_at": end.finished_at,
                }
            )
        insert_step = self._step_row.insert("fa_run_steps").replace(
            "INSERT INTO", "INSERT OR IGNORE INTO", 1
        )

        def write(connection: sqlite3.Connection) -> list[int]:
            sequences: list[int] = []
            with _sqlite_transaction(connection):
                if fence is not None:
                    _sqlite_check_fence(connection, fence)
                if turn is not None:
                    lineage = _sqlite_lineage(connection, turn.session_id, ended)
                    visible = " OR ".join(
                        "session_id = ?" if cut is None else "(session_id = ? AND message_id <= ?)"
                        for _session, cut in lineage
                    )
                    bound: list[Any] = [turn.agent_name]
                    for session_id, cut in lineage:
                        bound += [session_id] if cut is None else [session_id, cut]
                    (last,) = connection.execute(
                        "SELECT max(sequence) FROM fa_messages WHERE agent_name = ? AND ("
                        + visible
                        + ")",
                        bound,
                    ).fetchone()
                    first = (last or 0) + 1
                    sequences = list(range(first, first + len(messages)))
                    connection.executemany(
                        insert_message,
                        [
                            self._message_row.bind({**message, "sequence": sequence})
                            for sequence, message in zip(sequences, messages, strict=True)
                        ],
                    )
                if connection.execute(update_end, end_values).rowcount == 0:
                    raise CallNotStartedError(f"the call {end.execution_id!r} has no running row")
                if usage:
                    connection.executemany(insert_usage, usage)
                if step is not None:
                    connection.execute(insert_step, step)
            return sequences

        return await self._on_sqlite_thread(write)


def _lease_lost_error(error: DBAPIError) -> LeaseLostError:
    diag = getattr(error.orig, "diag", None)
    return LeaseLostError(getattr(diag, "message_primary", None) or str(error.orig))


def _sqlite_check_fence(connection: sqlite3.Connection, fence: Fence) -> None:
    """Within the write transaction (the write lock is held from BEGIN IMMEDIATE): refuse
    unless the run is running at the fence's epoch."""
    found = connection.execute(
        "SELECT status, lease_epoch FROM fa_runs WHERE run_id = ?", (fence.run_id,)
    ).fetchone()
    if found is None or tuple(found) != ("running", fence.lease_epoch):
        raise lease_lost(fence, *(found or (None, None)))


@contextmanager
def _sqlite_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock up front, waiting out the busy timeout), COMMIT, or
    ROLLBACK on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()

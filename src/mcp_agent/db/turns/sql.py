"""The turn store on PostgreSQL and SQLite.

PostgreSQL: a call's start is one INSERT and its end one call of `fa_end_call` (migration
0005), each a single statement in autocommit sent over the pooled psycopg connection itself:
two round trips per call, no BEGIN/COMMIT, no SQL compiled per call. SQLite: the same end as
one transaction of the statements the function runs (SQLite has no stored functions, and its
round trips stay inside the process).

Errors of the raw driver are raised as SQLAlchemy's `DBAPIError` family (as every other
store's), so the callers' and the CLI's handling of database errors applies unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError

from mcp_agent.db.conversations.base import NewMessage, PendingTurn
from mcp_agent.db.conversations.codec import encode_multipart, encode_provider, escape_nul
from mcp_agent.db.conversations.sql import SessionError, append_messages
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.executions.usage import UsageTotals, UsageTurn
from mcp_agent.db.models import ExecutionRow, UsageTurnRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.turns.base import CallEnd

#: SQLSTATE `fa_end_call` raises for a missing session (or ancestor of one).
_NO_SESSION_SQLSTATE = "FA001"

_START_CALL = (
    "INSERT INTO fa_executions (execution_id, parent_execution_id, session_id, agent_name,"
    " agent_version_id, operation, status, started_at, worker_id, settings_source,"
    " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)"
    " VALUES (%s, %s, %s, %s, %s, %s, 'running', %s, %s, %s, 0, 0, 0, 0, 0)"
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


def call_end_document(end: CallEnd) -> str:
    """`end` as the JSON `fa_end_call` takes (see migration 0005)."""
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
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


class SqlTurnStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime
        self._postgres = runtime.dialect == "postgresql"

    @asynccontextmanager
    async def _driver_connection(self) -> AsyncIterator[Any]:
        """The pooled psycopg connection itself, in autocommit: one statement, one round trip."""
        async with self._runtime.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            pooled = await connection.get_raw_connection()
            import psycopg

            try:
                yield pooled.driver_connection
            except psycopg.Error as error:
                if isinstance(error, psycopg.OperationalError):
                    await connection.invalidate(error)  # a broken connection goes to no one
                raise DBAPIError.instance(None, None, error, psycopg.Error) from error

    async def start_call(self, start: ExecutionStart) -> None:
        if self._postgres:
            async with self._driver_connection() as driver:
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
                    ),
                )
            return
        async with self._runtime.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(
                insert(ExecutionRow).values(
                    execution_id=start.execution_id,
                    parent_execution_id=start.parent_execution_id,
                    session_id=start.session_id,
                    agent_name=start.agent_name,
                    agent_version_id=start.agent_version_id,
                    operation=start.operation,
                    status="running",
                    started_at=start.started_at,
                    worker_id=start.worker_id,
                    settings_source=start.settings_source,
                )
            )

    async def end_call(self, end: CallEnd) -> list[int]:
        if self._postgres:
            return await self._end_call_postgres(end)
        return await self._end_call_in_statements(end)

    async def _end_call_postgres(self, end: CallEnd) -> list[int]:
        import psycopg

        document = call_end_document(end)
        try:
            async with self._driver_connection() as driver:
                cursor = await driver.execute(_END_CALL, (document,))
                row = await cursor.fetchone()
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _NO_SESSION_SQLSTATE:
                assert isinstance(error.orig, psycopg.Error)
                raise SessionError(error.orig.diag.message_primary or "no session") from None
            raise
        first = row[0] if row else None
        if first is None or end.turn is None:
            return []
        return list(range(first, first + len(end.turn.messages)))

    async def _end_call_in_statements(self, end: CallEnd) -> list[int]:
        values: dict[str, object] = {
            "status": end.status,
            "finished_at": end.finished_at,
            "error": end.error,
        }
        if end.totals is not None:
            values.update(_totals_values(end.totals))
        sequences: list[int] = []
        async with self._runtime.engine.begin() as connection:
            if end.turn is not None:
                sequences = await append_messages(
                    connection, end.turn.session_id, end.turn.agent_name, end.turn.messages
                )
            await connection.execute(
                update(ExecutionRow)
                .where(ExecutionRow.execution_id == end.execution_id)
                .values(**values)
            )
            if end.usage:
                await connection.execute(
                    insert(UsageTurnRow),
                    [_usage_values(end.execution_id, turn) for turn in end.usage],
                )
        return sequences

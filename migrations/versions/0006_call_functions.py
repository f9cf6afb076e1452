"""A call's end finds the next sequence by index; its start commits without a disk wait.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
Schema version: 6 / fast-agent-db 0.1

`fa_end_call` (0005) found the agent's last sequence with a join of `fa_messages` to the
session's lineage. plpgsql caches a generic plan for it after a few calls, and one made while
the table was small (or its statistics stale) scans every message: each call's end got slower
as the table grew (measured: 666 scans reading 4.3 million rows in 16,000 calls of the
concurrency benchmark). Now it asks, per session of the lineage, for the newest visible
message by the unique (session_id, agent_name, sequence) index, which stops at the first row.
Same result, same locking.

Adds `fa_start_call(...)`: the call's running row, committed with `synchronous_commit` off for
that one transaction (the end's synchronous commit flushes it with itself). If a server crash
loses it, `fa_end_call` finds no running row and raises SQLSTATE FA002, storing nothing.

SQLite has no stored functions: nothing changes there.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

END_CALL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION fa_end_call(call jsonb) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    turn jsonb := call -> 'turn';
    finished timestamptz := (call ->> 'finished_at')::timestamptz;
    totals jsonb := call -> 'totals';
    v_session text;
    v_agent text;
    v_current text;
    v_parent text;
    v_branch bigint;
    v_cut bigint;
    v_sessions text[];
    v_cuts bigint[];
    v_first integer;
BEGIN
    IF turn IS NOT NULL AND jsonb_typeof(turn) = 'object' THEN
        v_session := turn ->> 'session_id';
        v_agent := turn ->> 'agent_name';
        -- The session row's lock serialises appenders to the session; the statements after
        -- it see what an earlier appender committed.
        UPDATE fa_sessions SET updated_at = finished
            WHERE session_id = v_session
            RETURNING parent_session_id, branch_point_message_id INTO v_parent, v_branch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no session %', quote_literal(v_session) USING ERRCODE = 'FA001';
        END IF;
        v_sessions := ARRAY[v_session];
        v_cuts := ARRAY[NULL::bigint];
        v_cut := v_branch;
        WHILE v_parent IS NOT NULL LOOP
            v_current := v_parent;
            v_sessions := v_sessions || v_current;
            v_cuts := v_cuts || v_cut;
            SELECT parent_session_id, branch_point_message_id INTO v_parent, v_branch
                FROM fa_sessions WHERE session_id = v_current;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'session %, an ancestor of %, is missing',
                    quote_literal(v_current), quote_literal(v_session) USING ERRCODE = 'FA001';
            END IF;
            IF v_branch IS NOT NULL THEN
                v_cut := LEAST(COALESCE(v_cut, v_branch), v_branch);
            END IF;
        END LOOP;
        -- Per session of the lineage, its last visible message by the (session, agent,
        -- sequence) index, newest first: a backward index scan stopping at the first row,
        -- whatever the plan cache or the table's statistics say.
        SELECT COALESCE(max(last_visible.sequence), 0) + 1 INTO v_first
            FROM unnest(v_sessions, v_cuts) AS lineage(session_id, cut)
            CROSS JOIN LATERAL (
                SELECT m.sequence FROM fa_messages m
                WHERE m.session_id = lineage.session_id AND m.agent_name = v_agent
                    AND (lineage.cut IS NULL OR m.message_id <= lineage.cut)
                ORDER BY m.sequence DESC
                LIMIT 1
            ) AS last_visible;
        INSERT INTO fa_messages (session_id, agent_name, sequence, role, content, provider,
                                 provider_messages, is_prompt, model, execution_id, created_at)
            SELECT v_session, v_agent, v_first + (item.position - 1)::integer,
                   item.message ->> 'role', item.message -> 'content',
                   item.message ->> 'provider',
                   NULLIF(item.message -> 'provider_messages', 'null'::jsonb), false,
                   item.message ->> 'model', item.message ->> 'execution_id', finished
            FROM jsonb_array_elements(turn -> 'messages') WITH ORDINALITY
                AS item(message, position);
    END IF;
    UPDATE fa_executions SET
        status = call ->> 'status',
        finished_at = finished,
        error = call ->> 'error',
        input_tokens = COALESCE((totals ->> 'input_tokens')::integer, input_tokens),
        output_tokens = COALESCE((totals ->> 'output_tokens')::integer, output_tokens),
        cache_read_tokens = COALESCE((totals ->> 'cache_read_tokens')::integer, cache_read_tokens),
        cache_write_tokens =
            COALESCE((totals ->> 'cache_write_tokens')::integer, cache_write_tokens),
        reasoning_tokens = COALESCE((totals ->> 'reasoning_tokens')::integer, reasoning_tokens),
        cost = CASE WHEN totals IS NULL OR jsonb_typeof(totals) <> 'object' THEN cost
                    ELSE (totals ->> 'cost')::numeric END,
        model = CASE WHEN totals IS NULL OR jsonb_typeof(totals) <> 'object' THEN model
                     ELSE totals ->> 'model' END
        WHERE execution_id = call ->> 'execution_id';
    IF NOT FOUND THEN
        -- Its running row was committed asynchronously (fa_start_call) and lost in a server
        -- crash: nothing of the call is stored (its messages and usage would name no call).
        RAISE EXCEPTION 'the call % has no running row (lost in a database crash?)',
            quote_literal(call ->> 'execution_id') USING ERRCODE = 'FA002';
    END IF;
    INSERT INTO fa_usage_turns (execution_id, provider, model, input_tokens, output_tokens,
                                cache_read_tokens, cache_write_tokens, reasoning_tokens,
                                tool_use_tokens, cost, raw_usage, created_at)
        SELECT call ->> 'execution_id', usage ->> 'provider', usage ->> 'model',
               (usage ->> 'input_tokens')::integer, (usage ->> 'output_tokens')::integer,
               (usage ->> 'cache_read_tokens')::integer, (usage ->> 'cache_write_tokens')::integer,
               (usage ->> 'reasoning_tokens')::integer, (usage ->> 'tool_use_tokens')::integer,
               (usage ->> 'cost')::numeric, NULLIF(usage -> 'raw_usage', 'null'::jsonb), finished
        FROM jsonb_array_elements(COALESCE(call -> 'usage', '[]'::jsonb)) AS usage;
    RETURN v_first;
END
$fn$;
"""

START_CALL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION fa_start_call(
    p_execution_id text, p_parent_execution_id text, p_session_id text, p_agent_name text,
    p_agent_version_id integer, p_operation text, p_started_at timestamptz, p_worker_id text,
    p_settings_source text
) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The running row's commit does not wait for its WAL to reach the disk: the call's end
    -- commits synchronously, and WAL is flushed in order, so once the end is durable its
    -- start is too. A crash in between loses a row saying the call was running; the end
    -- then finds none and stores nothing (fa_end_call raises FA002).
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO fa_executions (execution_id, parent_execution_id, session_id, agent_name,
                               agent_version_id, operation, status, started_at, worker_id,
                               settings_source, input_tokens, output_tokens, cache_read_tokens,
                               cache_write_tokens, reasoning_tokens)
        VALUES (p_execution_id, p_parent_execution_id, p_session_id, p_agent_name,
                p_agent_version_id, p_operation, 'running', p_started_at, p_worker_id,
                p_settings_source, 0, 0, 0, 0, 0);
END
$fn$;
"""


def _previous_function() -> str:
    """0005's text of the function, which downgrade() puts back."""
    path = Path(__file__).with_name("0005_end_call_function.py")
    spec = importlib.util.spec_from_file_location("fast_agent_db_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.END_CALL_FUNCTION


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(END_CALL_FUNCTION)
        op.execute(START_CALL_FUNCTION)


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes: no data (a function's body only)."""
    return []


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS fa_start_call(text, text, text, text, integer, text,"
            " timestamptz, text, text)"
        )
        op.execute(_previous_function())

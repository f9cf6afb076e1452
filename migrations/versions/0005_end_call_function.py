"""The end of an agent call in one round trip (PostgreSQL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
Schema version: 5 / fast-agent-db 0.1

Adds the function `fa_end_call(call jsonb)`: everything a call's end writes - the session
row's lock, the turn's messages with the next gap-free sequences of the agent (across the
session's branch lineage), the execution's end and totals, one `fa_usage_turns` row per
provider call - as one statement, so one round trip and one implicit transaction. It does
exactly what the multi-statement path (`turns/sql.py`, which SQLite keeps) does; each of its
statements sees the rows committed before it ran (plpgsql in READ COMMITTED takes a new
snapshot per statement), so the sequence is read after the session's lock is held.

`call` is `{"execution_id", "status", "finished_at", "error", "totals": {...} | null,
"usage": [...], "turn": {"session_id", "agent_name", "messages": [...]} | null}`; it returns
the first sequence stored (null without a turn). A missing session raises SQLSTATE FA001.

SQLite has no stored functions: nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
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
        SELECT COALESCE(max(m.sequence), 0) + 1 INTO v_first
            FROM fa_messages m
            JOIN unnest(v_sessions, v_cuts) AS lineage(session_id, cut)
                ON m.session_id = lineage.session_id
            WHERE m.agent_name = v_agent AND (lineage.cut IS NULL OR m.message_id <= lineage.cut);
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(END_CALL_FUNCTION)


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes: no data (a function only)."""
    return []


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS fa_end_call(jsonb)")

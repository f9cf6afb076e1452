"""A durable run's calls fenced by its lease inside the call functions; its call steps stored
with their turns.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
Schema version: 9 / fast-agent-db 0.1

`fa_check_fence(fence jsonb)`: `fence` is `{"run_id", "lease_epoch"}`; it share-locks the
run's row (`FOR SHARE`: a claim, which takes `FOR UPDATE`, waits until the caller's
transaction ends) and raises SQLSTATE FA003 unless the run is `running` at that epoch. The
message says which epoch was lost and what the run is now.

`fa_start_call(...)` takes a tenth argument, `p_fence jsonb` (null outside a durable run):
checked first, and the execution's `run_id` is set from it. `fa_end_call(call)` reads
`call -> 'fence'` (checked before anything is written) and `call -> 'step'` (`{"run_id",
"step_key", "kind", "agent_name", "lease_epoch", "response"}`: the run's `call` step, inserted
into `fa_run_steps` in the same transaction as the turn, a key stored already kept). Without a
fence and a step both do exactly what 0006's do. See docs/durable-runs.md.

SQLite has no stored functions: turns/sql.py does the same in its one-transaction path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_FENCE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION fa_check_fence(fence jsonb) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    v_run text := fence ->> 'run_id';
    v_mine integer := (fence ->> 'lease_epoch')::integer;
    v_status text;
    v_epoch integer;
    v_now text;
BEGIN
    SELECT status, lease_epoch INTO v_status, v_epoch FROM fa_runs
        WHERE run_id = v_run FOR SHARE;
    IF NOT FOUND THEN
        v_now := 'no longer exists';
    ELSIF v_status = 'running' AND v_epoch = v_mine THEN
        RETURN;
    ELSIF v_status = 'running' THEN
        v_now := format('was claimed again: it runs at lease epoch %s now', v_epoch);
    ELSE
        v_now := format('is %s (lease epoch %s)', v_status, v_epoch);
    END IF;
    RAISE EXCEPTION '%', format('run %s: the lease of epoch %s was lost (the run %s); '
        || 'this write was refused and nothing of it was stored', v_run, v_mine, v_now)
        USING ERRCODE = 'FA003';
END
$fn$;
"""

END_CALL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION fa_end_call(call jsonb) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    turn jsonb := call -> 'turn';
    finished timestamptz := (call ->> 'finished_at')::timestamptz;
    totals jsonb := call -> 'totals';
    fence jsonb := call -> 'fence';
    step jsonb := call -> 'step';
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
    -- A durable run's call: refused (FA003) unless the run still runs at the writer's lease
    -- epoch; the run's row stays share-locked until this commits, so no claim slips in.
    IF fence IS NOT NULL AND jsonb_typeof(fence) = 'object' THEN
        PERFORM fa_check_fence(fence);
    END IF;
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
    -- The run's `call` step (its reply), in the transaction of its turn.
    IF step IS NOT NULL AND jsonb_typeof(step) = 'object' THEN
        INSERT INTO fa_run_steps (run_id, step_key, kind, agent_name, lease_epoch, response,
                                  body, created_at)
            VALUES (step ->> 'run_id', step ->> 'step_key', step ->> 'kind',
                    step ->> 'agent_name', (step ->> 'lease_epoch')::integer,
                    step -> 'response', NULL, finished)
            ON CONFLICT (run_id, step_key) DO NOTHING;
    END IF;
    RETURN v_first;
END
$fn$;
"""

START_CALL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION fa_start_call(
    p_execution_id text, p_parent_execution_id text, p_session_id text, p_agent_name text,
    p_agent_version_id integer, p_operation text, p_started_at timestamptz, p_worker_id text,
    p_settings_source text, p_fence jsonb
) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    -- A durable run's call (p_fence: {run_id, lease_epoch}): refused (FA003) unless the run
    -- still runs at that epoch; the execution names its run.
    IF p_fence IS NOT NULL AND jsonb_typeof(p_fence) = 'object' THEN
        PERFORM fa_check_fence(p_fence);
    END IF;
    -- The running row's commit does not wait for its WAL to reach the disk: the call's end
    -- commits synchronously, and WAL is flushed in order, so once the end is durable its
    -- start is too. A crash in between loses a row saying the call was running; the end
    -- then finds none and stores nothing (fa_end_call raises FA002).
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO fa_executions (execution_id, parent_execution_id, session_id, agent_name,
                               agent_version_id, operation, status, started_at, worker_id,
                               settings_source, input_tokens, output_tokens, cache_read_tokens,
                               cache_write_tokens, reasoning_tokens, run_id)
        VALUES (p_execution_id, p_parent_execution_id, p_session_id, p_agent_name,
                p_agent_version_id, p_operation, 'running', p_started_at, p_worker_id,
                p_settings_source, 0, 0, 0, 0, 0, p_fence ->> 'run_id');
END
$fn$;
"""

_PREVIOUS_START_SIGNATURE = "text, text, text, text, integer, text, timestamptz, text, text"


def _migration(file_name: str, module_name: str) -> ModuleType:
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECK_FENCE_FUNCTION)
        op.execute(END_CALL_FUNCTION)
        # A new argument makes a new function: the old one goes, so no call is ambiguous.
        op.execute(f"DROP FUNCTION IF EXISTS fa_start_call({_PREVIOUS_START_SIGNATURE})")
        op.execute(START_CALL_FUNCTION)


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes: no data (functions only)."""
    return []


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        previous = _migration("0006_call_functions.py", "fast_agent_db_migration_0006")
        op.execute(f"DROP FUNCTION IF EXISTS fa_start_call({_PREVIOUS_START_SIGNATURE}, jsonb)")
        op.execute(previous.START_CALL_FUNCTION)
        op.execute(previous.END_CALL_FUNCTION)
        op.execute("DROP FUNCTION IF EXISTS fa_check_fence(jsonb)")

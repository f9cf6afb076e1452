"""Durable runs: the run queue, its workers, the step journal and the webhook outbox.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
Schema version: 8 / fast-agent-db 0.1

Adds `fa_runs` (a run is a row: queued until a worker claims it under a lease whose epoch fences
its writes), `fa_run_steps` (the results of a run's agent calls, provider requests and tool
calls, so an attempt after a crash does not repeat them), `fa_workers`, `fa_webhooks`,
`fa_webhook_deliveries` (the outbox, written with the run's end) and `fa_webhook_attempts`;
and `fa_executions.run_id`. See docs/durable-runs.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mcp_agent.db.models.types as fa_types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fa_workers",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", fa_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_fa_workers")),
    )
    op.create_table(
        "fa_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("agent_name", sa.String(length=200), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("not_before", fa_types.UTCDateTime(), nullable=False),
        sa.Column("deadline", fa_types.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_epoch", sa.Integer(), nullable=False),
        sa.Column("lease_expires_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("cancel_requested_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("started_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("created_at", fa_types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'waiting', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_fa_runs_status_known"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_fa_runs_attempts_not_negative")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_fa_runs_max_attempts_positive")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["fa_sessions.session_id"],
            name=op.f("fk_fa_runs_session_id_fa_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_fa_runs")),
        sa.UniqueConstraint(
            "caller", "idempotency_key", name=op.f("uq_fa_runs_caller_idempotency_key")
        ),
    )
    with op.batch_alter_table("fa_runs", schema=None) as batch_op:
        batch_op.create_index("ix_fa_runs_created_at", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_fa_runs_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            "ix_fa_runs_status_not_before", ["status", "not_before"], unique=False
        )

    op.create_table(
        "fa_run_steps",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("agent_name", sa.String(length=200), nullable=False),
        sa.Column("lease_epoch", sa.Integer(), nullable=False),
        sa.Column("response", fa_types.JsonB, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", fa_types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('call', 'llm', 'tool')", name=op.f("ck_fa_run_steps_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["fa_runs.run_id"],
            name=op.f("fk_fa_run_steps_run_id_fa_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "step_key", name=op.f("pk_fa_run_steps")),
    )
    op.create_table(
        "fa_webhooks",
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_ref", sa.String(length=200), nullable=False),
        sa.Column("events", fa_types.JsonB, nullable=False),
        sa.Column("agent_name", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("disabled_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", fa_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["fa_runs.run_id"],
            name=op.f("fk_fa_webhooks_run_id_fa_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_fa_webhooks")),
    )
    with op.batch_alter_table("fa_webhooks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fa_webhooks_run_id"), ["run_id"], unique=False)

    op.create_table(
        "fa_webhook_deliveries",
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_ref", sa.String(length=200), nullable=False),
        sa.Column("payload", fa_types.JsonB, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", fa_types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_fa_webhook_deliveries_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["fa_runs.run_id"],
            name=op.f("fk_fa_webhook_deliveries_run_id_fa_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["fa_webhooks.webhook_id"],
            name=op.f("fk_fa_webhook_deliveries_webhook_id_fa_webhooks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_fa_webhook_deliveries")),
    )
    with op.batch_alter_table("fa_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fa_webhook_deliveries_run_id"), ["run_id"], unique=False
        )
        batch_op.create_index(
            "ix_fa_webhook_deliveries_status_next", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_fa_webhook_deliveries_webhook_id"), ["webhook_id"], unique=False
        )

    op.create_table(
        "fa_webhook_attempts",
        sa.Column("attempt_id", fa_types.BigIntId, nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["fa_webhook_deliveries.delivery_id"],
            name=op.f("fk_fa_webhook_attempts_delivery_id_fa_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_fa_webhook_attempts")),
    )
    with op.batch_alter_table("fa_webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fa_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )

    with op.batch_alter_table("fa_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_fa_executions_run_id"), ["run_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_fa_executions_run_id_fa_runs"),
            "fa_runs",
            ["run_id"],
            ["run_id"],
            ondelete="SET NULL",
        )


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit); read before asking to go ahead."""
    losses = []
    for table, what in (
        ("fa_runs", "durable runs, queued, running and ended"),
        ("fa_run_steps", "the runs' stored steps"),
        ("fa_webhooks", "webhooks"),
        ("fa_webhook_deliveries", "webhook deliveries, pending and done"),
        ("fa_webhook_attempts", "webhook delivery attempts"),
        ("fa_workers", "workers seen"),
    ):
        stored = connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
        losses.append((f"{table} ({what})", stored or 0, "row"))
    return losses


def downgrade() -> None:
    with op.batch_alter_table("fa_executions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_fa_executions_run_id_fa_runs"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_fa_executions_run_id"))
        batch_op.drop_column("run_id")

    with op.batch_alter_table("fa_webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fa_webhook_attempts_delivery_id"))

    op.drop_table("fa_webhook_attempts")
    with op.batch_alter_table("fa_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fa_webhook_deliveries_webhook_id"))
        batch_op.drop_index("ix_fa_webhook_deliveries_status_next")
        batch_op.drop_index(batch_op.f("ix_fa_webhook_deliveries_run_id"))

    op.drop_table("fa_webhook_deliveries")
    with op.batch_alter_table("fa_webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fa_webhooks_run_id"))

    op.drop_table("fa_webhooks")
    op.drop_table("fa_run_steps")
    with op.batch_alter_table("fa_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_fa_runs_status_not_before")
        batch_op.drop_index(batch_op.f("ix_fa_runs_session_id"))
        batch_op.drop_index("ix_fa_runs_created_at")

    op.drop_table("fa_runs")
    op.drop_table("fa_workers")

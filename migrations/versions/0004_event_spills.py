"""Spilled event batches are stored once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
Schema version: 4 / fast-agent-db 0.1

Adds `fa_event_spills`: one row per spill file whose events were stored, written in the same
transaction as those events. A replay that was killed after its commit, before it deleted the
file, finds the row when the file is replayed again and stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mcp_agent.db.models.types as fa_types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fa_event_spills",
        sa.Column("spill_id", sa.String(length=100), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("stored_at", fa_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("spill_id", name=op.f("pk_fa_event_spills")),
    )


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit); read before asking to go ahead."""
    stored = connection.scalar(sa.text("SELECT count(*) FROM fa_event_spills"))
    return [("fa_event_spills (which spill files were already stored)", stored or 0, "row")]


def downgrade() -> None:
    op.drop_table("fa_event_spills")

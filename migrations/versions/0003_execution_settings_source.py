"""Executions say which settings they ran with.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
Schema version: 3 / fast-agent-db 0.1

Adds `fa_executions.settings_source`: `database`, or the configuration file a run was given
explicitly (`FastAgent(config_path=...)`, `--config-path`), or the files upstream discovered
when the database held no settings. Rows written before this revision have NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("fa_executions", sa.Column("settings_source", sa.String(1000), nullable=True))


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit); read before asking to go ahead."""
    recorded = connection.scalar(
        sa.text("SELECT count(*) FROM fa_executions WHERE settings_source IS NOT NULL")
    )
    return [("fa_executions.settings_source", recorded or 0, "value")]


def downgrade() -> None:
    # A plain DROP COLUMN on both backends (SQLite >= 3.35): a batch copy of fa_executions
    # would drop and re-create a table other tables reference.
    op.execute("ALTER TABLE fa_executions DROP COLUMN settings_source")

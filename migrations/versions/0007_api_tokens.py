"""API tokens for `fast-agent-db serve`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
Schema version: 7 / fast-agent-db 0.1

Adds `fa_api_tokens`: one row per bearer token of the REST API. A token's value is shown once
when it is created and never stored: the row holds the SHA-256 of its random secret, which a
request's token is compared with in constant time. Revoking a token sets `revoked_at`; the row
stays, so `tokens list --all` still says which tokens existed and when they were last used.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mcp_agent.db.models.types as fa_types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fa_api_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", fa_types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", fa_types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", fa_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_fa_api_tokens")),
    )


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit); read before asking to go ahead."""
    stored = connection.scalar(sa.text("SELECT count(*) FROM fa_api_tokens"))
    return [("fa_api_tokens (REST API tokens; every one stops working)", stored or 0, "row")]


def downgrade() -> None:
    op.drop_table("fa_api_tokens")

"""SQLite: event ids are never drawn twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
Schema version: 10 / fast-agent-db 0.1

On SQLite, `fa_events.event_id` was a plain INTEGER PRIMARY KEY: a new row takes the highest id
plus one, so deleting the rows with the highest ids (a prune that removes replayed old events,
which can carry the newest ids) let later events reuse those ids, and a live-feed follower that
had seen them (`Last-Event-ID`) would skip the events that took them over. The table is rebuilt
with AUTOINCREMENT, which never hands out an id again; its rows and indexes are copied as they
are. PostgreSQL draws ids from a sequence, which never goes back: nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_events(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "fa_events", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_events(autoincrement=True)


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit): nothing, the rows are copied."""
    return []


def downgrade() -> None:
    _rebuild_events(autoincrement=False)

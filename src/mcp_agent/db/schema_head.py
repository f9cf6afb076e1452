"""The schema revision this code needs, known without loading Alembic.

Every command that opens a database checks its revision; reading Alembic's script directory
for that costs more start-up time than the command itself (`sessions list`). The value is
the head of migrations/versions; tests/test_migrations.py fails when a migration is added
and this is not moved along.
"""

from __future__ import annotations

SCHEMA_HEAD = "0010"

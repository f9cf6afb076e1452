"""What a database holds: its schema revision and our tables with their row counts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import func, inspect, select

from mcp_agent.db.migration_runner import head_revision
from mcp_agent.db.models import Base
from mcp_agent.db.runtime import DatabaseRuntime


@dataclass(frozen=True, slots=True)
class TableStatus:
    name: str
    row_count: int


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    display_url: str
    dialect: str
    revision: str | None
    head: str
    tables: list[TableStatus]

    @property
    def is_current(self) -> bool:
        return self.revision == self.head


async def describe_schema(runtime: DatabaseRuntime) -> SchemaStatus:
    """The revision, the head this code needs, and every fast-agent-db table present."""
    head = await asyncio.to_thread(head_revision)
    revision = await runtime.schema_revision()
    async with runtime.engine.connect() as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        tables = []
        for table in sorted(Base.metadata.tables.values(), key=lambda table: table.name):
            if table.name in present:
                count = await connection.scalar(select(func.count()).select_from(table))
                tables.append(TableStatus(table.name, int(count or 0)))
    return SchemaStatus(runtime.display_url, runtime.dialect, revision, head, tables)

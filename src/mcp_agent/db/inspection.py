"""What a database holds: its schema revision and our tables with their row counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, inspect, literal, select, union_all

from mcp_agent.db.models import Base
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.schema_head import SCHEMA_HEAD


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
    head = SCHEMA_HEAD  # known without loading Alembic (tests check it is the chain's head)
    revision = await runtime.schema_revision()
    async with runtime.engine.connect() as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        tables = [table for table in Base.metadata.tables.values() if table.name in present]
        counts: dict[str, int] = {}
        if tables:
            # One round trip for every count.
            query = union_all(
                *(
                    select(
                        literal(table.name).label("name"), func.count().label("rows")
                    ).select_from(table)
                    for table in tables
                )
            )
            counts = {name: int(rows) for name, rows in (await connection.execute(query)).all()}
    statuses = [TableStatus(name, counts[name]) for name in sorted(counts)]
    return SchemaStatus(runtime.display_url, runtime.dialect, revision, head, statuses)

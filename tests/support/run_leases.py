"""A run's row at a chosen status and lease epoch, written directly: the journal's and the
turn store's fencing tests need leases without going through a run store's claims."""

from __future__ import annotations

from sqlalchemy import update

from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime


async def hold_run_row(
    runtime: DatabaseRuntime, run_id: str, lease_epoch: int, status: str = "running"
) -> None:
    async with runtime.sessions.begin() as session:
        if await session.get(RunRow, run_id) is None:
            session.add(
                RunRow(
                    run_id=run_id,
                    agent_name="agent",
                    session_id=None,
                    message="hello",
                    status=status,
                    attempts=lease_epoch,
                    max_attempts=max(lease_epoch, 1),
                    caller="tests",
                    not_before=utc_now(),
                    lease_epoch=lease_epoch,
                )
            )
            return
        await session.execute(
            update(RunRow)
            .where(RunRow.run_id == run_id)
            .values(status=status, lease_epoch=lease_epoch)
        )

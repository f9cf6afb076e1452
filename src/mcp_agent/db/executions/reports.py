"""Usage reports: tokens and cost grouped by model, agent or session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select

from mcp_agent.db.models import ExecutionRow, UsageTurnRow
from mcp_agent.db.runtime import DatabaseRuntime

GroupBy = Literal["model", "agent", "session"]


@dataclass(frozen=True, slots=True)
class UsageRow:
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    cost: Decimal | None


async def usage_report(
    runtime: DatabaseRuntime,
    *,
    group_by: GroupBy = "model",
    session_id: str | None = None,
    agent_name: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
) -> list[UsageRow]:
    """Provider calls summed per group, from fa_usage_turns (each call counted once)."""
    key = {
        "model": func.coalesce(UsageTurnRow.model, "(unknown)"),
        "agent": ExecutionRow.agent_name,
        "session": func.coalesce(ExecutionRow.session_id, "(none)"),
    }[group_by]
    query = (
        select(
            key,
            func.count(),
            func.sum(UsageTurnRow.input_tokens),
            func.sum(UsageTurnRow.output_tokens),
            func.sum(UsageTurnRow.cache_read_tokens),
            func.sum(UsageTurnRow.reasoning_tokens),
            func.sum(UsageTurnRow.cost),
        )
        .join(ExecutionRow, ExecutionRow.execution_id == UsageTurnRow.execution_id)
        .group_by(key)
        .order_by(key)
    )
    if session_id is not None:
        query = query.where(ExecutionRow.session_id == session_id)
    if agent_name is not None:
        query = query.where(ExecutionRow.agent_name == agent_name)
    if model is not None:
        query = query.where(UsageTurnRow.model == model)
    if since is not None:
        query = query.where(UsageTurnRow.created_at >= since)
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        UsageRow(
            key=str(group),
            calls=int(calls),
            input_tokens=int(tokens_in or 0),
            output_tokens=int(tokens_out or 0),
            cache_read_tokens=int(cached or 0),
            reasoning_tokens=int(reasoning or 0),
            cost=None if cost is None else Decimal(cost),
        )
        for group, calls, tokens_in, tokens_out, cached, reasoning, cost in rows
    ]

"""What users type, resolved against the database: ids given whole or by a unique prefix
(as git takes commit hashes), and filter values that must name something.

A filter that matches nothing because its value exists nowhere (`logs --session nosuch`) is
a typo, not an empty result: these functions say so, naming what there is.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute

from mcp_agent.db.errors import UnknownValueError
from mcp_agent.db.models.conversations import SessionRow
from mcp_agent.db.models.executions import ExecutionRow
from mcp_agent.db.runtime import DatabaseRuntime

#: A prefix shorter than this is not completed (git's rule): `d` must not stand for a session.
MIN_PREFIX_LENGTH = 4
#: How many candidates an ambiguous prefix lists.
_SHOWN_CANDIDATES = 10


async def complete_id(
    runtime: DatabaseRuntime, column: InstrumentedAttribute[str], text: str, *, what: str
) -> str:
    """`text` if a row has it as its id, else the one id it begins.

    Raises:
        UnknownValueError: no row has the id or an id beginning with it, or several do.
    """
    async with runtime.sessions() as session:
        if await session.scalar(select(column).where(column == text)) is not None:
            return text
        if len(text) < MIN_PREFIX_LENGTH:
            raise UnknownValueError(
                f"no {what} {text!r} (a prefix needs at least {MIN_PREFIX_LENGTH} characters)"
            )
        candidates = list(
            await session.scalars(
                select(column)
                .where(column.startswith(text, autoescape=True))
                .order_by(column)
                .limit(_SHOWN_CANDIDATES + 1)
            )
        )
    if not candidates:
        raise UnknownValueError(f"no {what} {text!r}")
    if len(candidates) > 1:
        shown = ", ".join(candidates[:_SHOWN_CANDIDATES])
        more = " and more" if len(candidates) > _SHOWN_CANDIDATES else ""
        raise UnknownValueError(
            f"{what} prefix {text!r} is ambiguous: it begins {shown}{more}; type more of it"
        )
    return candidates[0]


async def complete_session_id(runtime: DatabaseRuntime, text: str) -> str:
    return await complete_id(runtime, SessionRow.session_id, text, what="session")


async def complete_execution_id(runtime: DatabaseRuntime, text: str) -> str:
    return await complete_id(runtime, ExecutionRow.execution_id, text, what="execution")


async def require_match(
    runtime: DatabaseRuntime,
    column: InstrumentedAttribute[str | None],
    value: str,
    *,
    option: str,
    where: str,
    extra: ColumnElement[bool] | None = None,
) -> None:
    """Refuse a filter value no row of `column`'s table has (checked only after a filtered
    read came back empty, so a normal read pays nothing).

    Raises:
        UnknownValueError: naming the option, the value and some values that exist.
    """
    query = select(column).where(column == value)
    if extra is not None:
        query = query.where(extra)
    async with runtime.sessions() as session:
        if await session.scalar(query.limit(1)) is not None:
            return
        known = list(
            await session.scalars(
                select(column)
                .where(column.is_not(None))
                .distinct()
                .order_by(column)
                .limit(_SHOWN_CANDIDATES + 1)
            )
        )
    listed = ", ".join(str(name) for name in known[:_SHOWN_CANDIDATES]) or "none"
    more = ", ..." if len(known) > _SHOWN_CANDIDATES else ""
    raise UnknownValueError(f"{option} {value!r}: no {where} has it (there are: {listed}{more})")


async def complete_logged_session_id(runtime: DatabaseRuntime, text: str) -> str:
    """As `complete_session_id`, and also a session that is gone but has events: a run that
    failed before its first turn leaves no session row, and its events say why it failed."""
    from mcp_agent.db.models.events import EventRow

    try:
        return await complete_session_id(runtime, text)
    except UnknownValueError:
        async with runtime.sessions() as session:
            logged = await session.scalar(
                select(EventRow.session_id).where(EventRow.session_id == text).limit(1)
            )
        if logged is None:
            raise
        return text

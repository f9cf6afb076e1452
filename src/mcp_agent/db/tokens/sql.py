"""API tokens in fa_api_tokens."""

from __future__ import annotations

from sqlalchemy import exists, select, update

from mcp_agent.db.models.api_tokens import ApiTokenRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tokens.base import LAST_USED_PRECISION, ApiToken, CreatedToken
from mcp_agent.db.tokens.naming import checked_name, token_to_revoke
from mcp_agent.db.tokens.values import (
    new_token_value,
    parse_token_value,
    secret_hash,
    secret_matches,
)


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        token_id=row.token_id,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlTokenStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def create(self, name: str) -> CreatedToken:
        name = checked_name(name)
        value = new_token_value()
        row = ApiTokenRow(
            token_id=value.token_id,
            name=name,
            hash=secret_hash(value.secret),
            created_at=utc_now(),
        )
        async with self._runtime.sessions.begin() as session:
            session.add(row)
        return CreatedToken(token=_token(row), value=value.text)

    async def list(self, *, include_revoked: bool = False) -> list[ApiToken]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.token_id)
        if not include_revoked:
            query = query.where(ApiTokenRow.revoked_at.is_(None))
        async with self._runtime.sessions() as session:
            return [_token(row) for row in await session.scalars(query)]

    async def revoke(self, id_or_name: str) -> ApiToken:
        async with self._runtime.sessions.begin() as session:
            rows = {
                row.token_id: row
                for row in await session.scalars(
                    select(ApiTokenRow).where(ApiTokenRow.revoked_at.is_(None))
                )
            }
            chosen = token_to_revoke((_token(row) for row in rows.values()), id_or_name)
            row = rows[chosen.token_id]
            row.revoked_at = utc_now()
            return _token(row)

    async def has_active_tokens(self) -> bool:
        async with self._runtime.sessions() as session:
            found = await session.scalar(select(exists().where(ApiTokenRow.revoked_at.is_(None))))
        return bool(found)

    async def authenticate(self, value: str) -> ApiToken | None:
        presented = parse_token_value(value)
        if presented is None:
            return None
        async with self._runtime.sessions() as session:
            row = await session.get(ApiTokenRow, presented.token_id)
        if row is None or row.revoked_at is not None:
            return None
        if not secret_matches(presented.secret, row.hash):
            return None
        now = utc_now()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
            async with self._runtime.sessions.begin() as session:
                await session.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.token_id == row.token_id)
                    .values(last_used_at=now)
                )
            row.last_used_at = now
        return _token(row)

"""In-memory token store: the reference implementation and the test double."""

from __future__ import annotations

from mcp_agent.db.models.types import utc_now
from mcp_agent.db.tokens.base import LAST_USED_PRECISION, ApiToken, CreatedToken
from mcp_agent.db.tokens.naming import checked_name, token_to_revoke
from mcp_agent.db.tokens.values import (
    new_token_value,
    parse_token_value,
    secret_hash,
    secret_matches,
)


class InMemoryTokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, ApiToken] = {}
        self._hashes: dict[str, str] = {}

    async def create(self, name: str) -> CreatedToken:
        name = checked_name(name)
        value = new_token_value()
        token = ApiToken(token_id=value.token_id, name=name, created_at=utc_now())
        self._tokens[token.token_id] = token
        self._hashes[token.token_id] = secret_hash(value.secret)
        return CreatedToken(token=token, value=value.text)

    async def list(self, *, include_revoked: bool = False) -> list[ApiToken]:
        tokens = sorted(self._tokens.values(), key=lambda token: (token.created_at, token.token_id))
        return [token for token in tokens if include_revoked or token.is_active]

    async def revoke(self, id_or_name: str) -> ApiToken:
        chosen = token_to_revoke(await self.list(), id_or_name)
        revoked = chosen.model_copy(update={"revoked_at": utc_now()})
        self._tokens[chosen.token_id] = revoked
        return revoked

    async def has_active_tokens(self) -> bool:
        return any(token.is_active for token in self._tokens.values())

    async def authenticate(self, value: str) -> ApiToken | None:
        presented = parse_token_value(value)
        token = None if presented is None else self._tokens.get(presented.token_id)
        if presented is None or token is None or not token.is_active:
            return None
        if not secret_matches(presented.secret, self._hashes[token.token_id]):
            return None
        now = utc_now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            token = token.model_copy(update={"last_used_at": now})
            self._tokens[token.token_id] = token
        return token

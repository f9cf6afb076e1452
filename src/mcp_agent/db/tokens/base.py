"""The token store seam: create, list, revoke, and check a presented value."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict

#: `last_used_at` is written at most this often per token: a busy client must not turn every
#: request into a write (on SQLite, one writer at a time).
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiToken(BaseModel):
    """A token as listed: everything but its value, which exists only in its creator's hands."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CreatedToken(BaseModel):
    """A token just created, with the value shown this once."""

    model_config = ConfigDict(frozen=True)

    token: ApiToken
    value: str


class TokenStore(Protocol):
    async def create(self, name: str) -> CreatedToken:
        """A new token named `name`; only its hash is kept.

        Raises:
            InputError: the name is empty, too long, or holds a NUL character.
        """
        ...

    async def list(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens, oldest first; revoked ones only when asked."""
        ...

    async def revoke(self, id_or_name: str) -> ApiToken:
        """Revoke the active token with this id, or the one active token with this name.

        Raises:
            UnknownValueError: no active token has it, or several have the name.
        """
        ...

    async def has_active_tokens(self) -> bool: ...

    async def authenticate(self, value: str) -> ApiToken | None:
        """The active token whose value `value` is, else None (unknown, revoked, malformed).

        Records when the token was used (at most once per `LAST_USED_PRECISION`).
        """
        ...

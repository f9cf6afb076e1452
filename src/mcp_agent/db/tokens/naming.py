"""Checks shared by the token stores: a token's name, and which token a revoke names."""

from __future__ import annotations

from collections.abc import Iterable

from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.limits import check_text, max_length
from mcp_agent.db.models.api_tokens import ApiTokenRow
from mcp_agent.db.tokens.base import ApiToken

TOKEN_NAME_MAX_LENGTH = max_length(ApiTokenRow.name) or 0


def checked_name(name: str) -> str:
    """`name` stripped, if it can name a token.

    Raises:
        InputError: empty, too long, or holding a NUL character.
    """
    stripped = name.strip()
    if not stripped:
        raise InputError("name", "a token needs a name (what or who it is for)")
    return check_text(stripped, field="name", max_length=TOKEN_NAME_MAX_LENGTH)


def token_to_revoke(active: Iterable[ApiToken], id_or_name: str) -> ApiToken:
    """The active token `id_or_name` names: by id first, else by a name only one has.

    Raises:
        UnknownValueError: none does, or several tokens have the name.
    """
    tokens = list(active)
    for token in tokens:
        if token.token_id == id_or_name:
            return token
    named = [token for token in tokens if token.name == id_or_name]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(token.token_id for token in named)
        raise UnknownValueError(
            f"{len(named)} active tokens are named {id_or_name!r} ({ids}); give the id"
        )
    listed = ", ".join(f"{token.token_id} ({token.name})" for token in tokens) or "none"
    raise UnknownValueError(f"no active token {id_or_name!r} (active tokens: {listed})")

"""The bearer-token check every route but health goes through.

A missing, malformed, unknown or revoked token is the same 401 problem: the response says
what to send, never which of those it was (that would tell a guesser which ids exist).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from mcp_agent.db.api.dependencies import TokenStore

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token from `fast-agent-db tokens create NAME`.",
)


class ApiCaller(BaseModel):
    """Who is calling: the token the request carried."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    token_name: str

    @property
    def audit_name(self) -> str:
        """Who a change is recorded as (`changed_by`, `created_by`)."""
        return f"api:{self.token_name}"


def _unauthorized(detail: str, *, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    tokens: TokenStore,
) -> ApiCaller:
    if credentials is None:
        raise _unauthorized(
            "This route needs an API token: send `Authorization: Bearer <token>` "
            "(create one with `fast-agent-db tokens create NAME`)."
        )
    token = await tokens.authenticate(credentials.credentials)
    if token is None:
        raise _unauthorized(
            "The bearer token is not valid (unknown or revoked).", error="invalid_token"
        )
    caller = ApiCaller(token_id=token.token_id, token_name=token.name)
    request.state.caller = caller
    return caller


Caller = Annotated[ApiCaller, Depends(require_token)]

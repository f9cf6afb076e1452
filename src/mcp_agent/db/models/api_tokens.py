"""Bearer tokens of the REST API (`fast-agent-db tokens`, `fast-agent-db serve`).

A token's value is never stored: `hash` is the SHA-256 of its random secret (see
mcp_agent.db.tokens.values), so reading the table does not give anyone a working token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from mcp_agent.db.models.base import Base
from mcp_agent.db.models.types import UTCDateTime, utc_now

API_TOKENS_TABLE = "fa_api_tokens"


class ApiTokenRow(Base):
    __tablename__ = API_TOKENS_TABLE

    #: The public part of the token's value (`fadb_<token_id>_<secret>`), shown by `tokens list`.
    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: What the token is for, as its creator named it (not unique: a name may be reused).
    name: Mapped[str] = mapped_column(String(200))
    #: Hex SHA-256 of the secret part.
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""What a token's value looks like, and how it is checked against what the database keeps.

A value is `fadb_<token_id>_<secret>`: the id finds the row (so a check is one primary-key
read, not a scan), the secret is 32 random bytes, and the row holds only the SHA-256 of the
secret. A secret this long cannot be guessed, so an unsalted fast hash is enough; what matters
is that the comparison takes the same time whatever the presented hash shares with the stored
one (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

TOKEN_PREFIX = "fadb_"
#: Hex characters of a token id: 48 random bits, enough that ids never collide in practice.
TOKEN_ID_LENGTH = 12
#: Random bytes of a secret (base64url: 43 characters).
SECRET_BYTES = 32
#: Longer values are refused before anything is hashed or read.
MAX_TOKEN_LENGTH = 200


class TokenValue(NamedTuple):
    token_id: str
    secret: str

    @property
    def text(self) -> str:
        """The whole value, as the client sends it (`Authorization: Bearer <text>`)."""
        return f"{TOKEN_PREFIX}{self.token_id}_{self.secret}"


def new_token_value() -> TokenValue:
    return TokenValue(secrets.token_hex(TOKEN_ID_LENGTH // 2), secrets.token_urlsafe(SECRET_BYTES))


def secret_hash(secret: str) -> str:
    """Hex SHA-256 of a secret: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token_value(text: str) -> TokenValue | None:
    """The id and secret of a presented value; None when it does not have a token's shape."""
    if len(text) > MAX_TOKEN_LENGTH or not text.startswith(TOKEN_PREFIX):
        return None
    token_id, separator, secret = text[len(TOKEN_PREFIX) :].partition("_")
    if not separator or not secret or len(token_id) != TOKEN_ID_LENGTH:
        return None
    if any(character not in "0123456789abcdef" for character in token_id):
        return None
    return TokenValue(token_id, secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether `secret` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(secret_hash(secret).encode(), stored_hash.encode())

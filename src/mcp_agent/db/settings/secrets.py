"""Secrets in configuration: stored as references, resolved only when used.

A secret value in the database is one of:

* `env:NAME`: the environment variable NAME, read when the secret is needed. Upstream's own
  `${NAME}` placeholder is accepted on input and stored in this form.
* `enc:v1:TOKEN`: a literal secret the user asked to store, Fernet-encrypted with the key in
  FAST_AGENT_DB_SECRET_KEY (a urlsafe base64 32-byte key, `fast-agent-db config keygen`).

Plaintext secrets never reach the database, an export or a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from mcp_agent.db.errors import FastAgentDbError

SECRET_KEY_ENV = "FAST_AGENT_DB_SECRET_KEY"
ENV_PREFIX = "env:"
ENCRYPTED_PREFIX = "enc:v1:"
#: upstream's placeholder for "no key here" (ProviderKeyManager treats it as unset).
API_KEY_HINT_TEXT = "<your-api-key-here>"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: Names of env vars and headers whose values are secrets (as upstream's log redaction uses).
_SECRET_NAME = re.compile(
    r"(api[_-]?key|secret|password|passwd|token|auth|credential|private[_-]?key)", re.IGNORECASE
)


class SecretError(FastAgentDbError):
    """A secret cannot be stored or resolved; the message names the field and the variable."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def is_reference(value: object) -> bool:
    return isinstance(value, str) and (
        value.startswith(ENV_PREFIX) or value.startswith(ENCRYPTED_PREFIX)
    )


def as_reference(value: str, *, field: str, encrypt_literals: bool) -> str:
    """The stored form of a secret value given on input.

    Raises:
        SecretError: the value is a literal secret and encryption was not requested, or the
            encryption key is missing.
    """
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if not _ENV_NAME.match(name):
            raise SecretError(field, f"{value!r} is not a valid env: reference")
        return value
    if value.startswith(ENCRYPTED_PREFIX):
        return value
    placeholder = _PLACEHOLDER.match(value.strip())
    if placeholder:
        return f"{ENV_PREFIX}{placeholder.group(1)}"
    if not encrypt_literals:
        raise SecretError(
            field,
            "holds a literal secret. Store a reference instead (env:VARIABLE or ${VARIABLE}), "
            f"or pass --encrypt-secrets with {SECRET_KEY_ENV} set to store it encrypted",
        )
    return ENCRYPTED_PREFIX + _fernet(field).encrypt(value.encode()).decode()


def resolve(reference: str, *, field: str) -> str:
    """The plaintext of a stored secret, read now.

    Raises:
        SecretError: naming the missing environment variable, or the missing key.
    """
    if reference.startswith(ENV_PREFIX):
        name = reference[len(ENV_PREFIX) :]
        value = os.environ.get(name)
        if value is None:
            raise SecretError(field, f"refers to the environment variable {name}, which is not set")
        remember_plaintext(value)
        return value
    if reference.startswith(ENCRYPTED_PREFIX):
        from cryptography.fernet import InvalidToken

        try:
            value = _fernet(field).decrypt(reference[len(ENCRYPTED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretError(
                field, f"cannot be decrypted with the key in {SECRET_KEY_ENV} (another key?)"
            ) from None
        remember_plaintext(value)
        return value
    return reference


def mask(value: str) -> str:
    """How a stored secret is shown: references as they are, encrypted values hidden."""
    if value.startswith(ENCRYPTED_PREFIX):
        return "<encrypted>"
    return value


def export_placeholder(value: str, *, suggested_env: str) -> str:
    """The YAML form upstream loads: `${NAME}` (resolved by upstream's own loader)."""
    if value.startswith(ENV_PREFIX):
        return "${" + value[len(ENV_PREFIX) :] + "}"
    return "${" + suggested_env + "}"


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _fernet(field: str):  # noqa: ANN202 - cryptography is imported lazily
    from cryptography.fernet import Fernet

    key = os.environ.get(SECRET_KEY_ENV)
    if not key:
        raise SecretError(
            field, f"is stored encrypted and needs the key in {SECRET_KEY_ENV}, which is not set"
        )
    try:
        return Fernet(key.encode())
    except ValueError:
        raise SecretError(
            SECRET_KEY_ENV,
            "is not a valid key (32 url-safe base64-encoded bytes); "
            "make one with: fast-agent-db config keygen",
        ) from None


# Plaintexts resolved in this process, so log and event writers can scrub them.
_resolved_plaintexts: set[str] = set()


def remember_plaintext(value: str) -> None:
    if len(value) >= 4:
        _resolved_plaintexts.add(value)


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every secret resolved in this process replaced by `***`."""
    for secret in (*_resolved_plaintexts, *extra):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text

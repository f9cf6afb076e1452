"""Secrets kept out of the event log: by the name they are stored under, and in free text.

Upstream logs whole server configurations (`launch_server` logs `config.model_dump()` at
debug level) and truncates only a few field names to their first ten characters. Before an
event is queued, every string in its data stored under a secret-looking name becomes `***`
(an env var `BRAVE_KEY`, a header `Cookie`, `auth.api_key`), and every other string, and the
message, loses URL userinfo, credential-looking `name=value` pairs (query parameters
included), quoted `"token": "..."` pairs and bearer tokens. Plaintexts resolved from stored
secret references in this process are replaced as well (`settings.secrets.scrub`).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from mcp_agent.db.conversations.codec import escape_nul
from mcp_agent.db.settings.secrets import scrub

REDACTED = "***"

#: Names whose values are secrets: env vars, headers, and keys anywhere in an event's data.
_SECRET_NAME = re.compile(r"key|token|secret|pass|auth|credential|cookie|session", re.IGNORECASE)
# Query parameters also carry signatures (`sig=`, `X-Amz-Signature=`).
_SIGNATURE = re.compile(r"sig", re.IGNORECASE)

# Each pattern starts only where its leading run starts (the look-behinds), so that no text,
# however long its runs of letters, costs more than one pass.
_URL_USERINFO = re.compile(r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://)[^\s/?#'\"<>]+@", re.I)
_NAME_EQUALS_VALUE = re.compile(
    r"""(?<![A-Za-z0-9_.\-\[\]])([A-Za-z0-9_.\-\[\]]+)(\s*=\s*["']?)[^&#\s'",;<>]+"""
)
_QUOTED_NAME_VALUE = re.compile(r"""(["'])([A-Za-z0-9_.\- ]+)\1(\s*:\s*["'])[^"']*""")
_AUTHORIZATION = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """An env var, header or data key whose value is a secret (names repeat: cached)."""
    return bool(_SECRET_NAME.search(name))


def _is_credential_parameter(name: str) -> bool:
    return is_secret_name(name) or bool(_SIGNATURE.search(name))


def _pair_redacted(match: re.Match[str]) -> str:
    name, equals = match.group(1), match.group(2)
    return f"{name}{equals}{REDACTED}" if _is_credential_parameter(name) else match.group(0)


def _quoted_pair_redacted(match: re.Match[str]) -> str:
    quote, name, colon = match.group(1), match.group(2), match.group(3)
    return f"{quote}{name}{quote}{colon}{REDACTED}" if is_secret_name(name) else match.group(0)


def redact_text(text: str) -> str:
    """`text` with URL userinfo, credential-looking pairs and bearer tokens replaced by ***,
    and plaintexts of secrets resolved in this process scrubbed.

    Each rule runs only on text holding the character it needs: most strings hold none.
    """
    text = scrub(text)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    if "=" in text:
        text = _NAME_EQUALS_VALUE.sub(_pair_redacted, text)
    if ":" in text and ('"' in text or "'" in text):
        text = _QUOTED_NAME_VALUE.sub(_quoted_pair_redacted, text)
    if " " in text:
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered:
            text = _AUTHORIZATION.sub(rf"\1 {REDACTED}", text)
    return text


def redact_event_data(value: Any, *, name: str | None = None) -> Any:
    """JSON-safe `value` (from upstream's serializer) with its secrets redacted.

    `name` is the key `value` is stored under: a string under a secret name is replaced
    whole, lists under it item by item, and mappings are looked into key by key. Anything
    that is not JSON (upstream hands some values through as they are) becomes its text.
    """
    if isinstance(value, str):
        if name is not None and is_secret_name(name):
            return REDACTED
        return escape_nul(redact_text(value))
    if isinstance(value, dict):
        return {
            escape_nul(str(key)): redact_event_data(entry, name=str(key))
            for key, entry in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_event_data(entry, name=name) for entry in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_event_data(str(value), name=name)

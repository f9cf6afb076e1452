"""Documents read from the API can be written back: an encrypted secret is shown as
`<encrypted>`, and `<encrypted>` written where an encrypted value is stored keeps that value
(instead of storing the mask, or refusing it as a literal secret)."""

from __future__ import annotations

from typing import Any

from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.document import ConfigDocument, secret_locations


def keep_encrypted_values(incoming: dict[str, Any], current: ConfigDocument) -> dict[str, Any]:
    """`incoming` (upstream's YAML shape) with each `<encrypted>` that sits where `current`
    stores an encrypted value replaced by that value; `incoming` itself is not changed."""
    result = dict(incoming)
    for path, stored in secret_locations(current):
        if not stored.startswith(secrets.ENCRYPTED_PREFIX):
            continue
        node: Any = result
        for part in path[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(part), dict):
                node = None
                break
            node[part] = dict(node[part])  # copied on the way down, so incoming stays as is
            node = node[part]
        if isinstance(node, dict) and node.get(path[-1]) == secrets.ENCRYPTED_MASK:
            node[path[-1]] = stored
    return result

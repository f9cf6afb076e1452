"""What changed between two configuration documents, field by field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.base import ConfigChange
from mcp_agent.db.settings.document import ConfigDocument

#: (entity_type, entity_name, field, operation, old_value, new_value)
Change = tuple[str, str, str | None, str, Any, Any]


def _masked(value: Any) -> Any:
    """History never holds even ciphertext of a secret, only that it changed."""
    if isinstance(value, str) and value.startswith(secrets.ENCRYPTED_PREFIX):
        return secrets.mask(value)
    if isinstance(value, dict):
        return {key: _masked(entry) for key, entry in value.items()}
    return value


def _diff_fields(
    entity_type: str, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> Iterator[Change]:
    if old is None and new is not None:
        yield (entity_type, name, None, "insert", None, _masked(new))
    elif new is None and old is not None:
        yield (entity_type, name, None, "delete", _masked(old), None)
    elif old is not None and new is not None:
        for field in [*old, *(key for key in new if key not in old)]:
            if old.get(field) != new.get(field):
                yield (
                    entity_type,
                    name,
                    field,
                    "update",
                    _masked(old.get(field)),
                    _masked(new.get(field)),
                )


def _diff_entities(
    entity_type: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> Iterator[Change]:
    for name in sorted(old.keys() | new.keys()):
        yield from _diff_fields(entity_type, name, old.get(name), new.get(name))


def diff_documents(old: ConfigDocument, new: ConfigDocument) -> list[Change]:
    changes: list[Change] = []
    for key in [*old.settings, *(key for key in new.settings if key not in old.settings)]:
        before, after = old.settings.get(key), new.settings.get(key)
        if key not in new.settings:
            changes.append(("setting", key, None, "delete", before, None))
        elif key not in old.settings:
            changes.append(("setting", key, None, "insert", None, after))
        elif before != after:
            changes.append(("setting", key, None, "update", before, after))
    changes.extend(
        _diff_entities(
            "provider",
            {name: provider.model_dump() for name, provider in old.providers.items()},
            {name: provider.model_dump() for name, provider in new.providers.items()},
        )
    )
    changes.extend(
        _diff_entities(
            "mcp_server",
            {name: server.set_fields() for name, server in old.servers.items()},
            {name: server.set_fields() for name, server in new.servers.items()},
        )
    )
    return changes


def matches_key(change: ConfigChange, key: str | None) -> bool:
    if key is None:
        return True
    keys = {change.key, change.key.removeprefix("mcp.servers.")}
    return any(
        candidate == key or candidate.startswith(key + ".") or key.startswith(candidate + ".")
        for candidate in keys
    )

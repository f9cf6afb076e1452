"""What changed between two configuration documents, field by field, and what history keeps.

History never holds a secret: an encrypted value is recorded as `<encrypted>` (only that it
changed), and plaintext that looks like a secret (rows stored before the secret rules) as
`<secret>`; references (`env:NAME`, `tpl:...`) stay, they are not secrets. `purged_values`
removes values already recorded (`fast-agent-db config purge-history`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.base import ConfigChange
from mcp_agent.db.settings.document import PROVIDER_SECTIONS, ConfigDocument

#: (entity_type, entity_name, field, operation, old_value, new_value)
Change = tuple[str, str, str | None, str, Any, Any]
#: What a purged history value becomes.
PURGED = "<purged>"
#: What history writes instead of a value: kept as they are when masking again.
_MASKS = (secrets.ENCRYPTED_MASK, secrets.SECRET_MASK, PURGED)


def masked(value: Any, *, name: str | None) -> Any:
    """`value` as history may keep it: every secret in it masked; `name` names the value."""
    if isinstance(value, dict):
        return {key: masked(entry, name=str(key)) for key, entry in value.items()}
    if isinstance(value, list):
        return [masked(entry, name=name) for entry in value]
    if isinstance(value, str) and value.startswith(secrets.ENCRYPTED_PREFIX):
        return secrets.ENCRYPTED_MASK
    if value in _MASKS:
        return value
    if secrets.is_literal_secret(value, name=name):
        return secrets.SECRET_MASK
    return value


def displayed_change(change: ConfigChange) -> dict[str, Any]:
    """A recorded change as `config history --json` and the API show it: keys as users type
    them, values masked (rows recorded before history masked secrets are masked when shown)."""
    name = change.field or change.entity_name.rpartition(".")[2]
    return {
        "changed_at": change.changed_at,
        "key": change.key,
        "operation": change.operation,
        "old_value": change.value_as_typed(masked(change.old_value, name=name)),
        "new_value": change.value_as_typed(masked(change.new_value, name=name)),
        "changed_by": change.changed_by,
    }


def _last_part(key: str) -> str:
    return key.rpartition(".")[2]


def _diff_fields(
    entity_type: str, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> Iterator[Change]:
    if old is None and new is not None:
        yield (entity_type, name, None, "insert", None, masked(new, name=None))
    elif new is None and old is not None:
        yield (entity_type, name, None, "delete", masked(old, name=None), None)
    elif old is not None and new is not None:
        for field in [*old, *(key for key in new if key not in old)]:
            if old.get(field) != new.get(field):
                yield (
                    entity_type,
                    name,
                    field,
                    "update",
                    masked(old.get(field), name=field),
                    masked(new.get(field), name=field),
                )


def _diff_entities(
    entity_type: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> Iterator[Change]:
    for name in sorted(old.keys() | new.keys()):
        yield from _diff_fields(entity_type, name, old.get(name), new.get(name))


def diff_documents(old: ConfigDocument, new: ConfigDocument) -> list[Change]:
    changes: list[Change] = []
    for key in [*old.settings, *(key for key in new.settings if key not in old.settings)]:
        before = masked(old.settings.get(key), name=_last_part(key))
        after = masked(new.settings.get(key), name=_last_part(key))
        if key not in new.settings:
            changes.append(("setting", key, None, "delete", before, None))
        elif key not in old.settings:
            changes.append(("setting", key, None, "insert", None, after))
        elif old.settings[key] != new.settings[key]:
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


def normalised_key(key: str) -> str:
    """`openai.api_key` as history records it: the provider's `api_key_ref` field."""
    head, _, rest = key.partition(".")
    if head in PROVIDER_SECTIONS and (rest == "api_key" or rest.startswith("api_key.")):
        return f"{head}.api_key_ref{rest[len('api_key') :]}"
    return key


def _candidate_keys(change: ConfigChange) -> set[str]:
    keys = {change.key, change.stored_key}
    return keys | {key.removeprefix("mcp.servers.") for key in keys}


def matches_key(change: ConfigChange, key: str | None) -> bool:
    """Whether `change` is about `key`: the key itself, a child of it, or a parent holding it."""
    if key is None:
        return True
    key = normalised_key(key)
    return any(
        candidate == key or candidate.startswith(key + ".") or key.startswith(candidate + ".")
        for candidate in _candidate_keys(change)
    )


def purged_values(change: ConfigChange, key: str | None) -> tuple[Any, Any]:
    """The old and new value `change` keeps after purging.

    With `key`: a change of the key or a child loses its values (`<purged>`); a change of a
    parent (a whole server inserted, say) loses the part under the key. Without a key: every
    value that looks like a secret is masked, as history records them now.
    """
    if key is None:
        name = change.field or _last_part(change.entity_name)
        if change.field is None and change.entity_type != "setting":
            name = None
        return masked(change.old_value, name=name), masked(change.new_value, name=name)
    key = normalised_key(key)
    for candidate in _candidate_keys(change):
        if candidate == key or candidate.startswith(key + "."):
            return _purged(change.old_value), _purged(change.new_value)
        if key.startswith(candidate + "."):
            below = key[len(candidate) + 1 :]
            return _purged_at(change.old_value, below), _purged_at(change.new_value, below)
    return change.old_value, change.new_value


def _purged(value: Any) -> Any:
    return None if value is None else PURGED


def _purged_at(value: Any, dotted: str) -> Any:
    """`value` with the part at the dotted path replaced (keys may themselves hold dots)."""
    if isinstance(value, dict):
        for key in sorted(value, key=lambda entry: len(str(entry)), reverse=True):
            text = str(key)
            if dotted == text:
                return {**value, key: _purged(value[key])}
            if dotted.startswith(text + "."):
                return {**value, key: _purged_at(value[key], dotted[len(text) + 1 :])}
    if isinstance(value, list):
        index, _, rest = dotted.partition(".")
        if index.isdigit() and int(index) < len(value):
            position = int(index)
            entry = _purged_at(value[position], rest) if rest else _purged(value[position])
            return [*value[:position], entry, *value[position + 1 :]]
    return value


@dataclass(frozen=True, slots=True)
class HistoryPurge:
    """What `purge-history` found: rows about the key (every row without one), and rows whose
    values it removes (or removed)."""

    matched: int
    purged: int

"""The settings seam: where a run's configuration document comes from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mcp_agent.db.settings.document import ConfigDocument

#: An edit of a configuration document: returns the new document (may mutate and return it).
DocumentEdit = Callable[[ConfigDocument], ConfigDocument]


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One recorded change: `entity_type` is setting, provider, mcp_server or model."""

    changed_at: datetime
    entity_type: str
    entity_name: str
    field: str | None
    operation: str
    old_value: Any
    new_value: Any
    changed_by: str | None
    #: The history row's id (SQL store; None in memory): orders changes made at the same time.
    change_id: int | None = None

    @property
    def key(self) -> str:
        """The key as users type it (`config set openai.api_key ...`)."""
        field = _FIELDS_AS_TYPED.get(self.field or "", self.field)
        return self._key(field)

    def value_as_typed(self, value: Any) -> Any:
        """An old or new value with fields named as users type them (a provider inserted
        whole shows `api_key`, not the `api_key_ref` column)."""
        if isinstance(value, dict) and self.field is None:
            return {_FIELDS_AS_TYPED.get(name, name): item for name, item in value.items()}
        return value

    @property
    def stored_key(self) -> str:
        """The key with the column's name (`openai.api_key_ref`), as history rows hold it."""
        return self._key(self.field)

    def _key(self, field: str | None) -> str:
        prefix = "mcp.servers." if self.entity_type == "mcp_server" else ""
        return f"{prefix}{self.entity_name}" + (f".{field}" if field else "")


#: Stored field names that differ from the key users type: a provider's API key is stored as
#: a reference (`api_key_ref`), set and shown as `api_key`.
_FIELDS_AS_TYPED = {"api_key_ref": "api_key"}


class SettingsSource(Protocol):
    """Reads the configuration document a run is built from."""

    async def load_document(self) -> ConfigDocument:
        """The current document; secrets inside it are references, never plaintext."""
        ...


class SettingsStore(SettingsSource, Protocol):
    """A settings source that can also be changed, recording every change."""

    async def update(
        self, edit: DocumentEdit, *, changed_by: str | None = None
    ) -> list[ConfigChange]:
        """Apply `edit` to the current document atomically; nothing changes if it raises.

        Returns the changes recorded (empty when the document did not change).
        """
        ...

    async def history(self, key: str | None = None, *, limit: int = 100) -> list[ConfigChange]:
        """Recorded changes, newest first; `key` narrows to a dotted key and its children."""
        ...

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

    @property
    def key(self) -> str:
        prefix = "mcp.servers." if self.entity_type == "mcp_server" else ""
        return f"{prefix}{self.entity_name}" + (f".{self.field}" if self.field else "")


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

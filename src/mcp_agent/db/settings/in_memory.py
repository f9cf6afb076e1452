"""In-memory settings store: the reference implementation and the test double."""

from __future__ import annotations

from mcp_agent.db.models.types import utc_now
from mcp_agent.db.settings.base import ConfigChange, DocumentEdit
from mcp_agent.db.settings.changes import diff_documents, matches_key
from mcp_agent.db.settings.document import ConfigDocument, validate_document


class InMemorySettingsStore:
    def __init__(self, document: ConfigDocument | None = None) -> None:
        self._document = document or ConfigDocument()
        self._changes: list[ConfigChange] = []

    async def load_document(self) -> ConfigDocument:
        return self._document.model_copy(deep=True)

    async def update(
        self, edit: DocumentEdit, *, changed_by: str | None = None
    ) -> list[ConfigChange]:
        new = edit(self._document.model_copy(deep=True))
        validate_document(new)
        now = utc_now()
        changes = [
            ConfigChange(now, *change, changed_by=changed_by)
            for change in diff_documents(self._document, new)
        ]
        self._document = new
        self._changes.extend(changes)
        return changes

    async def history(self, key: str | None = None, *, limit: int = 100) -> list[ConfigChange]:
        selected = [change for change in reversed(self._changes) if matches_key(change, key)]
        return selected[:limit]

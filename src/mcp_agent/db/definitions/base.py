"""The definition store seam: agents and workflows, versioned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mcp_agent.db.definitions.specs import AgentDefinition, AgentSpec, PutResult


class DefinitionStore(Protocol):
    async def current(self, names: Sequence[str] | None = None) -> dict[str, AgentDefinition]:
        """The current version of every live agent (or of `names`), by name."""
        ...

    async def get(self, name: str, version: int | None = None) -> AgentDefinition:
        """One version (default: the current one). Raises DefinitionError if absent."""
        ...

    async def versions(self, name: str) -> list[AgentDefinition]:
        """Every version of an agent, oldest first."""
        ...

    async def put(
        self,
        specs: Sequence[AgentSpec],
        *,
        source: str,
        created_by: str | None = None,
        check_imports: bool = True,
    ) -> list[PutResult]:
        """Upsert by name, atomically: a new version only where the definition changed.

        Specs are canonicalised first; the new set (with the stored agents they refer to) is
        validated as a whole, and nothing is written if any problem is found.
        """
        ...

    async def rollback(
        self, name: str, version: int, *, created_by: str | None = None
    ) -> PutResult:
        """Make a copy of `version` the newest version."""
        ...

    async def delete(self, name: str) -> None:
        """Delete an agent; refused, naming them, while other live agents refer to it."""
        ...

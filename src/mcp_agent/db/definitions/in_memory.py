"""In-memory definition store: the reference implementation and the test double."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mcp_agent.db.definitions.specs import AgentDefinition, AgentSpec, DefinitionError, PutResult
from mcp_agent.db.definitions.upsert import prepare_upsert, referrers, rollback
from mcp_agent.db.models.types import utc_now

if TYPE_CHECKING:
    from mcp_agent.db.settings.base import SettingsSource


class InMemoryDefinitionStore:
    """Agents refer to MCP servers by name: `known_servers` fixes the names a put accepts;
    with `settings` instead, they are the servers of its current document (as the SQL store
    checks them against the servers table); with neither, any name is accepted."""

    def __init__(
        self, *, known_servers: set[str] | None = None, settings: SettingsSource | None = None
    ) -> None:
        self._versions: dict[str, list[AgentDefinition]] = {}
        self._live: set[str] = set()
        self._known_servers = known_servers
        self._settings = settings

    async def _servers(self) -> set[str] | None:
        if self._known_servers is not None or self._settings is None:
            return self._known_servers
        return set((await self._settings.load_document()).servers)

    async def current(self, names: Sequence[str] | None = None) -> dict[str, AgentDefinition]:
        wanted = self._live if names is None else self._live & set(names)
        return {name: self._versions[name][-1] for name in sorted(wanted)}

    async def get(self, name: str, version: int | None = None) -> AgentDefinition:
        versions = self._versions.get(name, [])
        if version is None and name in self._live:
            return versions[-1]
        for definition in versions:
            if definition.version == version:
                return definition
        suffix = "" if version is None else f" version {version}"
        raise DefinitionError([f"{name}{suffix}: no such agent definition"])

    async def versions(self, name: str) -> list[AgentDefinition]:
        if name not in self._versions:
            raise DefinitionError([f"{name}: no such agent definition"])
        return list(self._versions[name])

    async def put(
        self,
        specs: Sequence[AgentSpec],
        *,
        source: str,
        created_by: str | None = None,
        check_imports: bool = True,
    ) -> list[PutResult]:
        current = {
            name: (definition.spec, definition.content_hash)
            for name, definition in (await self.current()).items()
        }
        prepared = prepare_upsert(
            current, specs, known_servers=await self._servers(), check_imports=check_imports
        )
        results = []
        for item in prepared:
            name = item.spec.name
            history = self._versions.setdefault(name, [])
            if not item.changed:
                results.append(
                    PutResult(name=name, version=history[-1].version, outcome="unchanged")
                )
                continue
            version = len(history) + 1
            history.append(
                AgentDefinition(
                    spec=item.spec,
                    version=version,
                    content_hash=item.content_hash,
                    created_at=utc_now(),
                    source=source,
                    created_by=created_by,
                )
            )
            outcome = "created" if item.current_hash is None else "updated"
            self._live.add(name)
            results.append(PutResult(name=name, version=version, outcome=outcome))
        return results

    async def rollback(
        self, name: str, version: int, *, created_by: str | None = None
    ) -> PutResult:
        return await rollback(self, name, version, created_by=created_by)

    async def delete(self, name: str) -> None:
        if name not in self._live:
            raise DefinitionError([f"{name}: no such agent definition"])
        users = referrers({n: d.spec for n, d in (await self.current()).items()}, name)
        if users:
            raise DefinitionError([f"{name}: cannot be deleted, used by {', '.join(users)}"])
        self._live.discard(name)

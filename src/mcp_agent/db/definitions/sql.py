"""Definitions in fa_agents, fa_agent_versions, fa_agent_links and fa_agent_servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_agent.db.definitions.specs import (
    AGENT_SPEC,
    SPEC_TYPES,
    AgentDefinition,
    AgentSpec,
    DefinitionError,
    PutResult,
)
from mcp_agent.db.definitions.upsert import prepare_upsert, referrers, rollback
from mcp_agent.db.models import (
    AgentLinkRow,
    AgentRow,
    AgentServerRow,
    AgentVersionRow,
    McpServerRow,
)
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime

#: Serialises definition writers on PostgreSQL ("fa-defs").
_DEFINITIONS_LOCK_KEY = 0x66612D64656673
#: Columns of fa_agent_versions that carry a spec field of the same meaning.
_TYPE_FIELDS = (
    "model",
    "request_params",
    "human_input",
    "use_history",
    "cumulative",
    "include_request",
    "plan_type",
    "plan_iterations",
    "min_rating",
    "max_refinements",
    "agent_class",
)
#: Link roles that hold a single child rather than a list.
_SINGLE_ROLES = {"fan_in": "fan_in", "generator": "generator", "evaluator": "evaluator"}
_LIST_ROLES = {
    "sequence": "sequence",
    "fan_out": "fan_out",
    "router_target": "agents",
    "orchestrated": "agents",
}


async def _lock(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DEFINITIONS_LOCK_KEY}
        )
    else:
        await session.execute(text("UPDATE fa_agents SET name = name WHERE 0 = 1"))


def _spec_values(spec: AgentSpec) -> dict[str, Any]:
    fields = spec.model_dump()
    values = {column: fields[column] for column in _TYPE_FIELDS if column in fields}
    values.setdefault("use_history", True)
    values.setdefault("human_input", False)
    return values


async def _definitions(session: AsyncSession, where: ColumnElement[bool]) -> list[AgentDefinition]:
    """Definitions of the version rows matching `where`, with their links and servers."""
    rows = (
        await session.execute(
            select(AgentRow.name, AgentVersionRow)
            .join(AgentVersionRow, AgentVersionRow.agent_id == AgentRow.agent_id)
            .where(where)
            .order_by(AgentRow.agent_id, AgentVersionRow.version)
        )
    ).all()
    version_ids = [version.agent_version_id for _name, version in rows]
    links: dict[int, list[tuple[str, int, str]]] = {}
    servers: dict[int, list[str]] = {}
    if version_ids:
        for version_id, role, position, child in await session.execute(
            select(
                AgentLinkRow.agent_version_id,
                AgentLinkRow.role,
                AgentLinkRow.position,
                AgentRow.name,
            )
            .join(AgentRow, AgentRow.agent_id == AgentLinkRow.child_agent_id)
            .where(AgentLinkRow.agent_version_id.in_(version_ids))
            .order_by(AgentLinkRow.role, AgentLinkRow.position)
        ):
            links.setdefault(version_id, []).append((role, position, child))
        for version_id, server in await session.execute(
            select(AgentServerRow.agent_version_id, McpServerRow.name)
            .join(McpServerRow, McpServerRow.server_id == AgentServerRow.server_id)
            .where(AgentServerRow.agent_version_id.in_(version_ids))
            .order_by(AgentServerRow.position)
        ):
            servers.setdefault(version_id, []).append(server)
    return [
        _definition(
            name,
            version,
            links.get(version.agent_version_id, []),
            servers.get(version.agent_version_id, []),
        )
        for name, version in rows
    ]


def _definition(
    name: str, row: AgentVersionRow, links: list[tuple[str, int, str]], servers: list[str]
) -> AgentDefinition:
    values: dict[str, Any] = {
        "name": name,
        "type": row.agent_type,
        "instruction": row.instruction,
        "default": row.is_default,
        **{column: getattr(row, column) for column in _TYPE_FIELDS},
        "servers": servers,
    }
    for role, _position, child in links:
        if role in _SINGLE_ROLES:
            values[_SINGLE_ROLES[role]] = child
        else:
            values.setdefault(_LIST_ROLES[role], []).append(child)
    allowed = set(SPEC_TYPES[row.agent_type].model_fields)
    spec = AGENT_SPEC.validate_python(
        {key: value for key, value in values.items() if key in allowed}
    )
    return AgentDefinition(
        spec=spec,
        version=row.version,
        agent_version_id=row.agent_version_id,
        content_hash=row.content_hash,
        created_at=row.created_at,
        source=row.source,
        created_by=row.created_by,
    )


_LIVE = AgentRow.deleted_at.is_(None) & (
    AgentVersionRow.agent_version_id == AgentRow.current_version_id
)


class SqlDefinitionStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def current(self, names: Sequence[str] | None = None) -> dict[str, AgentDefinition]:
        where = _LIVE if names is None else _LIVE & AgentRow.name.in_(names)
        async with self._runtime.sessions() as session:
            return {d.name: d for d in await _definitions(session, where)}

    async def get(self, name: str, version: int | None = None) -> AgentDefinition:
        where = (AgentRow.name == name) & (
            _LIVE if version is None else AgentVersionRow.version == version
        )
        async with self._runtime.sessions() as session:
            found = await _definitions(session, where)
        if not found:
            suffix = "" if version is None else f" version {version}"
            raise DefinitionError([f"{name}{suffix}: no such agent definition"])
        return found[0]

    async def versions(self, name: str) -> list[AgentDefinition]:
        async with self._runtime.sessions() as session:
            found = await _definitions(session, AgentRow.name == name)
        if not found:
            raise DefinitionError([f"{name}: no such agent definition"])
        return found

    async def put(
        self,
        specs: Sequence[AgentSpec],
        *,
        source: str,
        created_by: str | None = None,
        check_imports: bool = True,
    ) -> list[PutResult]:
        async with self._runtime.sessions.begin() as session:
            await _lock(session)
            return await self._put(
                session, specs, source=source, created_by=created_by, check_imports=check_imports
            )

    async def _put(
        self,
        session: AsyncSession,
        specs: Sequence[AgentSpec],
        *,
        source: str,
        created_by: str | None,
        check_imports: bool,
    ) -> list[PutResult]:
        current = {d.name: (d.spec, d.content_hash) for d in await _definitions(session, _LIVE)}
        server_ids = dict(
            (await session.execute(select(McpServerRow.name, McpServerRow.server_id))).all()
        )
        prepared = prepare_upsert(
            current, specs, known_servers=set(server_ids), check_imports=check_imports
        )
        agents = {row.name: row for row in await session.scalars(select(AgentRow))}
        for item in prepared:
            if item.spec.name not in agents:
                agents[item.spec.name] = AgentRow(name=item.spec.name)
                session.add(agents[item.spec.name])
        await session.flush()
        last_versions = dict(
            (
                await session.execute(
                    select(AgentVersionRow.agent_id, func.max(AgentVersionRow.version)).group_by(
                        AgentVersionRow.agent_id
                    )
                )
            ).all()
        )
        results = []
        for item in prepared:
            agent = agents[item.spec.name]
            if not item.changed:
                results.append(
                    PutResult(
                        name=agent.name, version=last_versions[agent.agent_id], outcome="unchanged"
                    )
                )
                continue
            version = AgentVersionRow(
                agent_id=agent.agent_id,
                version=last_versions.get(agent.agent_id, 0) + 1,
                agent_type=item.spec.type,
                instruction=item.spec.instruction,
                is_default=item.spec.default,
                content_hash=item.content_hash,
                source=source,
                created_by=created_by,
                **_spec_values(item.spec),
            )
            session.add(version)
            await session.flush()
            session.add_all(
                AgentLinkRow(
                    agent_version_id=version.agent_version_id,
                    role=role,
                    position=position,
                    child_agent_id=agents[child].agent_id,
                )
                for role, position, child in item.spec.links()
            )
            session.add_all(
                AgentServerRow(
                    agent_version_id=version.agent_version_id,
                    position=position,
                    server_id=server_ids[server],
                )
                for position, server in enumerate(item.spec.server_names())
            )
            agent.current_version_id = version.agent_version_id
            agent.deleted_at = None
            agent.updated_at = utc_now()
            outcome = "created" if item.current_hash is None else "updated"
            results.append(PutResult(name=agent.name, version=version.version, outcome=outcome))
        return results

    async def rollback(
        self, name: str, version: int, *, created_by: str | None = None
    ) -> PutResult:
        return await rollback(self, name, version, created_by=created_by)

    async def delete(self, name: str) -> None:
        async with self._runtime.sessions.begin() as session:
            await _lock(session)
            live = {d.name: d.spec for d in await _definitions(session, _LIVE)}
            if name not in live:
                raise DefinitionError([f"{name}: no such agent definition"])
            users = referrers(live, name)
            if users:
                raise DefinitionError([f"{name}: cannot be deleted, used by {', '.join(users)}"])
            agent = (await session.scalars(select(AgentRow).where(AgentRow.name == name))).one()
            agent.deleted_at = utc_now()

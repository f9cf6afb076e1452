"""Settings in the relational configuration tables."""

from __future__ import annotations

from sqlalchemy import Select, delete, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_agent.db.models import (
    AgentRow,
    AgentServerRow,
    ConfigChangeRow,
    McpServerRow,
    ProviderRow,
    SettingRow,
)
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.base import ConfigChange, DocumentEdit
from mcp_agent.db.settings.changes import (
    HistoryPurge,
    diff_documents,
    matches_key,
    normalised_key,
    purged_values,
)
from mcp_agent.db.settings.document import (
    SERVER_FIELDS,
    ConfigDocument,
    ConfigError,
    ProviderConfig,
    ServerConfig,
    validate_document,
)

#: Serialises configuration writers on PostgreSQL (an arbitrary, fixed advisory-lock key).
_CONFIG_LOCK_KEY = 0x66612D636F6E66  # "fa-conf"


async def lock_configuration(session: AsyncSession) -> None:
    """Take the configuration write lock for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write statement, which takes
    the database's RESERVED lock at once instead of at the first real write (where two
    read-then-write transactions would deadlock).
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CONFIG_LOCK_KEY})
    else:
        await session.execute(text("UPDATE fa_settings SET key = key WHERE 0 = 1"))


def _server_config(row: McpServerRow) -> ServerConfig:
    fields = {name: getattr(row, name) for name in SERVER_FIELDS}
    # Unset fields stay unset, so an export reproduces what was imported.
    explicit = {name: value for name, value in fields.items() if value is not None}
    explicit.setdefault("transport", row.transport)
    return ServerConfig(**explicit)


async def _load(session: AsyncSession) -> ConfigDocument:
    settings = {row.key: row.value for row in await session.scalars(select(SettingRow))}
    providers = {
        row.name: ProviderConfig(
            base_url=row.base_url, api_key_ref=row.api_key_ref, options=dict(row.options or {})
        )
        for row in await session.scalars(
            select(ProviderRow).where(ProviderRow.configured.is_(True)).order_by(ProviderRow.name)
        )
    }
    servers = {
        row.name: _server_config(row)
        for row in await session.scalars(select(McpServerRow).order_by(McpServerRow.name))
    }
    return ConfigDocument(providers=providers, servers=servers, settings=settings)


async def _servers_in_use(session: AsyncSession, names: set[str]) -> dict[str, list[str]]:
    """Servers among `names` that a current agent definition uses, with those agents."""
    if not names:
        return {}
    rows = await session.execute(
        select(McpServerRow.name, AgentRow.name)
        .join(AgentServerRow, AgentServerRow.server_id == McpServerRow.server_id)
        .join(AgentRow, AgentRow.current_version_id == AgentServerRow.agent_version_id)
        .where(McpServerRow.name.in_(names), AgentRow.deleted_at.is_(None))
    )
    users: dict[str, list[str]] = {}
    for server, agent in rows.all():
        users.setdefault(server, []).append(agent)
    return users


async def _write(session: AsyncSession, old: ConfigDocument, new: ConfigDocument) -> None:
    removed_keys = old.settings.keys() - new.settings.keys()
    if removed_keys:
        await session.execute(delete(SettingRow).where(SettingRow.key.in_(removed_keys)))
    updated = {
        key: value
        for key, value in new.settings.items()
        if key in old.settings and old.settings[key] != value
    }
    for row in await session.scalars(select(SettingRow).where(SettingRow.key.in_(updated))):
        row.value = updated[row.key]
    session.add_all(
        SettingRow(key=key, value=value)
        for key, value in new.settings.items()
        if key not in old.settings
    )

    provider_names = old.providers.keys() | new.providers.keys()
    provider_rows = {
        row.name: row
        for row in await session.scalars(
            select(ProviderRow).where(ProviderRow.name.in_(provider_names))
        )
    }
    for name in provider_names:
        row = provider_rows.get(name)
        provider = new.providers.get(name)
        if provider is None:
            if row is not None:
                # Keep the row: it may own models and prices.
                row.configured, row.base_url, row.api_key_ref, row.options = False, None, None, {}
            continue
        if row is None:
            row = ProviderRow(name=name)
            session.add(row)
        row.configured = True
        row.base_url = provider.base_url
        row.api_key_ref = provider.api_key_ref
        row.options = dict(provider.options)

    removed = old.servers.keys() - new.servers.keys()
    in_use = await _servers_in_use(session, removed)
    if in_use:
        raise ConfigError(
            [
                f"mcp.servers.{server}: cannot be removed, "
                f"agents use it: {', '.join(sorted(agents))}"
                for server, agents in sorted(in_use.items())
            ]
        )
    if removed:
        await session.execute(delete(McpServerRow).where(McpServerRow.name.in_(removed)))
    changed = {
        name: server
        for name, server in new.servers.items()
        if name not in old.servers or old.servers[name] != server
    }
    server_rows = {
        row.name: row
        for row in await session.scalars(select(McpServerRow).where(McpServerRow.name.in_(changed)))
    }
    for name, server in changed.items():
        row = server_rows.get(name)
        if row is None:
            row = McpServerRow(name=name)
            session.add(row)
        fields = server.model_dump()
        for field in SERVER_FIELDS:
            setattr(row, field, fields[field])


class SqlSettingsStore:
    """Settings source and store over the fa_settings, fa_providers and fa_mcp_servers tables."""

    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def load_document(self) -> ConfigDocument:
        async with self._runtime.sessions() as session:
            return await _load(session)

    async def update(
        self, edit: DocumentEdit, *, changed_by: str | None = None
    ) -> list[ConfigChange]:
        async with self._runtime.sessions.begin() as session:
            await lock_configuration(session)
            old = await _load(session)
            new = edit(old.model_copy(deep=True))
            validate_document(new)
            changes = diff_documents(old, new)
            if not changes:
                return []
            await _write(session, old, new)
            rows = [
                ConfigChangeRow(
                    entity_type=entity_type,
                    entity_name=entity_name,
                    field=field,
                    operation=operation,
                    old_value=old_value,
                    new_value=new_value,
                    changed_by=changed_by,
                )
                for entity_type, entity_name, field, operation, old_value, new_value in changes
            ]
            session.add_all(rows)
            await session.flush()
            return [_change(row) for row in rows]

    async def history(self, key: str | None = None, *, limit: int = 100) -> list[ConfigChange]:
        query = _history_query(key).order_by(
            ConfigChangeRow.changed_at.desc(), ConfigChangeRow.change_id.desc()
        )
        async with self._runtime.sessions() as session:
            rows = await session.scalars(query)
            changes = [_change(row) for row in rows]
        return [change for change in changes if matches_key(change, key)][:limit]

    async def purge_history(self, key: str | None, *, apply: bool) -> HistoryPurge:
        """Remove recorded values: of `key` and its children (parents lose the part under
        it), or, with no key, every value that looks like a secret. `apply=False` counts.

        The rows stay (when, key, change, who). On SQLite the old bytes are overwritten, not
        just unlinked (secure_delete, then the WAL is checkpointed and truncated).
        """
        sqlite = self._runtime.dialect == "sqlite"
        async with self._runtime.sessions.begin() as session:
            await lock_configuration(session)
            if apply and sqlite:
                await session.execute(text("PRAGMA secure_delete = ON"))
            matched = purged = 0
            for row in await session.scalars(_history_query(key)):
                change = _change(row)
                if not matches_key(change, key):
                    continue
                matched += 1
                old, new = purged_values(change, key)
                if (old, new) == (row.old_value, row.new_value):
                    continue
                purged += 1
                if apply:
                    row.old_value, row.new_value = old, new
        if apply and purged and sqlite:
            await self._checkpoint_sqlite()
        return HistoryPurge(matched=matched, purged=purged)

    async def _checkpoint_sqlite(self) -> None:
        """Copy the WAL into the database file and truncate it, so no frame still holds the
        values just overwritten."""
        async with self._runtime.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def _history_query(key: str | None) -> Select[tuple[ConfigChangeRow]]:
    query = select(ConfigChangeRow)
    if key is None:
        return query
    name = normalised_key(key).removeprefix("mcp.servers.")
    # A coarse filter in SQL (LIKE treats '_' as a wildcard); matches_key decides.
    return query.where(
        or_(
            ConfigChangeRow.entity_name == name,
            ConfigChangeRow.entity_name.like(name + ".%"),
            literal(name).like(ConfigChangeRow.entity_name + ".%"),
        )
    )


def _change(row: ConfigChangeRow) -> ConfigChange:
    return ConfigChange(
        changed_at=row.changed_at,
        entity_type=row.entity_type,
        entity_name=row.entity_name,
        field=row.field,
        operation=row.operation,
        old_value=row.old_value,
        new_value=row.new_value,
        changed_by=row.changed_by,
        change_id=row.change_id,
    )

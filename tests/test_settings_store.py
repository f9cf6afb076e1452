"""One behaviour suite for every settings store: in memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.base import SettingsStore
from mcp_agent.db.settings.document import ConfigDocument, ConfigError, document_from_yaml
from mcp_agent.db.settings.in_memory import InMemorySettingsStore
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.settings.yaml_files import read_yaml_file

FIXTURES = Path(__file__).parent / "fixtures" / "config"

STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
]


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest) -> str:  # overrides conftest: adds "memory"
    return request.param


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[SettingsStore]:
    if backend == "memory":
        yield InMemorySettingsStore()
        return
    runtime = await DatabaseRuntime.open(request.getfixturevalue("database_url"))
    yield SqlSettingsStore(runtime)
    await runtime.close()


def full_document() -> ConfigDocument:
    return document_from_yaml(
        read_yaml_file(FIXTURES / "fastagent.config.yaml"),
        read_yaml_file(FIXTURES / "fastagent.secrets.yaml"),
    )


async def test_a_document_is_stored_and_loaded_unchanged(store: SettingsStore) -> None:
    document = full_document()
    changes = await store.update(lambda _current: document)
    assert changes
    assert await store.load_document() == document
    assert await store.update(lambda _current: full_document()) == [], "no change, no history"


async def test_every_change_is_recorded_with_old_and_new(store: SettingsStore) -> None:
    await store.update(lambda document: edits.set_value(document, "logger.level", "info"))
    await store.update(lambda document: edits.set_value(document, "logger.level", "debug"))
    await store.update(
        lambda document: edits.add_server(
            document, "calc", {"command": "python", "args": ["s.py"]}
        ),
        changed_by="alice",
    )
    await store.update(lambda document: edits.unset_value(document, "logger.level"))

    level = await store.history("logger.level")
    assert [(c.operation, c.old_value, c.new_value) for c in level] == [
        ("delete", "debug", None),
        ("update", "info", "debug"),
        ("insert", None, "info"),
    ]
    (server,) = await store.history("mcp.servers.calc")
    assert (server.operation, server.changed_by, server.new_value["command"]) == (
        "insert",
        "alice",
        "python",
    )
    assert [c.key for c in await store.history("calc")] == ["mcp.servers.calc"]
    assert len(await store.history()) == 4
    assert len(await store.history(limit=1)) == 1


async def test_a_failing_edit_changes_nothing(store: SettingsStore) -> None:
    await store.update(lambda _current: full_document())
    before = await store.load_document()
    before_history = await store.history()

    def half_then_fail(document: ConfigDocument) -> ConfigDocument:
        edits.set_value(document, "default_model", "generic.llama3")
        return edits.set_value(document, "mcp.servers.remote_http.transport", "pigeon")

    with pytest.raises(ConfigError, match="transport"):
        await store.update(half_then_fail)
    with pytest.raises(ConfigError, match="unknown model 'no-such-model'"):
        await store.update(lambda d: edits.set_value(d, "default_model", "no-such-model"))
    assert await store.load_document() == before
    assert await store.history() == before_history


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("mcp.servers.ghost.command", "no MCP server named 'ghost'"),
        ("logger.colour", "unknown field"),
        ("antropic.api_key", "unknown setting"),
        ("database.url", "not stored inside the database"),
    ],
)
async def test_bad_keys_are_refused(store: SettingsStore, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await store.update(lambda document: edits.set_value(document, key, "x"))
    assert await store.history() == []


async def test_removing_a_missing_server_names_it(store: SettingsStore) -> None:
    with pytest.raises(ConfigError, match="mcp.servers.ghost: no MCP server"):
        await store.update(lambda document: edits.remove_server(document, "ghost"))

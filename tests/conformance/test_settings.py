"""SettingsStore: a document stored and loaded unchanged, every change recorded, an edit that
fails changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import ConfigDocument, ConfigError, document_from_yaml
from mcp_agent.db.settings.yaml_files import read_yaml_file
from tests.conformance.stores import Stores

FIXTURES = Path(__file__).parents[1] / "fixtures" / "config"


def full_document() -> ConfigDocument:
    return document_from_yaml(
        read_yaml_file(FIXTURES / "fastagent.config.yaml"),
        read_yaml_file(FIXTURES / "fastagent.secrets.yaml"),
    )


async def test_a_document_is_stored_and_loaded_unchanged(stores: Stores) -> None:
    store = stores.settings
    document = full_document()
    changes = await store.update(lambda _current: document)
    assert changes
    assert await store.load_document() == document
    assert await store.update(lambda _current: full_document()) == [], "no change, no history"


async def test_a_loaded_document_is_a_copy(stores: Stores) -> None:
    store = stores.settings
    await store.update(lambda document: edits.set_value(document, "logger.level", "info"))
    loaded = await store.load_document()
    edits.set_value(loaded, "logger.level", "debug")
    assert (await store.load_document()).settings["logger.level"] == "info"
    assert len(await store.history()) == 1


async def test_every_change_is_recorded_with_old_and_new(stores: Stores) -> None:
    store = stores.settings
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


async def test_history_is_newest_first_and_a_key_takes_its_children(stores: Stores) -> None:
    store = stores.settings
    returned = await store.update(
        lambda document: edits.set_value(document, "logger.level", "info"), changed_by="bob"
    )
    await store.update(lambda document: edits.set_value(document, "logger.type", "console"))
    await store.update(lambda document: edits.set_value(document, "default_model", "passthrough"))
    await store.update(lambda document: edits.add_server(document, "calc", {"command": "python"}))
    await store.update(
        lambda document: edits.set_value(document, "mcp.servers.calc.command", "python3")
    )

    assert [c.key for c in await store.history()] == [
        "mcp.servers.calc.command",
        "mcp.servers.calc",
        "default_model",
        "logger.type",
        "logger.level",
    ]
    assert [c.key for c in await store.history("logger")] == ["logger.type", "logger.level"]
    assert [c.key for c in await store.history("mcp.servers.calc")] == [
        "mcp.servers.calc.command",
        "mcp.servers.calc",
    ]
    # A key's history also holds the changes of what contains it (the server inserted whole).
    command, inserted = await store.history("mcp.servers.calc.command")
    assert inserted.key == "mcp.servers.calc" and inserted.new_value["command"] == "python"
    assert (command.operation, command.old_value, command.new_value) == (
        "update",
        "python",
        "python3",
    )
    assert [c.key for c in await store.history(limit=2)] == [
        "mcp.servers.calc.command",
        "mcp.servers.calc",
    ]
    assert await store.history("logger.colour") == []
    oldest = (await store.history())[-1]
    assert [oldest] == returned, "update returns the changes history records"
    assert oldest.changed_by == "bob" and oldest.changed_at.tzinfo is not None
    times = [c.changed_at for c in await store.history()]
    assert times == sorted(times, reverse=True)


async def test_a_failing_edit_changes_nothing(stores: Stores) -> None:
    store = stores.settings
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


#: (key, what the refusal says). One store takes them all: a refused edit writes nothing.
BAD_KEYS = [
    ("mcp.servers.ghost.command", "no MCP server named 'ghost'"),
    ("logger.colour", "unknown field"),
    ("antropic.api_key", "unknown setting"),
    ("database.url", "not stored inside the database"),
]


async def test_bad_keys_are_refused(stores: Stores) -> None:
    store = stores.settings
    for key, message in BAD_KEYS:
        with pytest.raises(ConfigError, match=message):
            await store.update(lambda document, key=key: edits.set_value(document, key, "x"))
        assert await store.history() == [], key


async def test_removing_a_missing_server_names_it(stores: Stores) -> None:
    with pytest.raises(ConfigError, match="mcp.servers.ghost: no MCP server"):
        await stores.settings.update(lambda document: edits.remove_server(document, "ghost"))

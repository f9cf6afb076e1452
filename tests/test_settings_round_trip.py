"""YAML -> database -> exported YAML -> upstream get_settings() gives the original Settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import mcp_agent.config as upstream_config
import pytest

import mcp_agent
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.document import document_from_yaml, document_to_yaml
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.settings.yaml_files import dump_yaml, read_yaml_file

FIXTURES = Path(__file__).parent / "fixtures" / "config"
UPSTREAM_EXAMPLES = sorted(
    Path(mcp_agent.__file__).parent.joinpath("resources", "examples").rglob("fastagent.config.yaml")
)
SECRET_VALUES = {
    "FA_TEST_SERVICE_TOKEN": "service-token-1234",
    "FA_TEST_AUTH_HEADER": "Bearer header-5678",
    "FA_TEST_SERVER_KEY": "server-key-9012",
    "FA_TEST_ANTHROPIC_KEY": "sk-ant-test-3456",
    "FA_TEST_OPENAI_KEY": "sk-openai-test-7890",
    "FA_TEST_AZURE_KEY": "azure-test-1122",
    "FA_TEST_GENERIC_KEY": "generic-test-3344",
    "FA_TEST_HF_TOKEN": "hf-test-5566",
}


def upstream_settings(config_file: Path) -> dict:
    """What upstream fast-agent itself loads from a config file (and secrets beside it)."""
    upstream_config._settings = None
    try:
        return upstream_config.get_settings(str(config_file)).model_dump()
    finally:
        upstream_config._settings = None


async def _through_database(database_url: str, config: dict, secrets: dict | None) -> dict:
    imported = document_from_yaml(config, secrets)
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlSettingsStore(runtime)
        await store.update(lambda _current: imported)
    # A second connection, so nothing is served from the first one's state.
    async with await DatabaseRuntime.open(database_url) as runtime:
        return document_to_yaml(await SqlSettingsStore(runtime).load_document())


async def test_every_field_survives_the_round_trip(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    original = upstream_settings(FIXTURES / "fastagent.config.yaml")
    assert original["anthropic"]["api_key"] == "sk-ant-test-3456"  # the secrets file was read

    exported = await _through_database(
        database_url,
        read_yaml_file(FIXTURES / "fastagent.config.yaml"),
        read_yaml_file(FIXTURES / "fastagent.secrets.yaml"),
    )
    export_dir = tmp_path / "exported"
    export_dir.mkdir()
    (export_dir / "fastagent.config.yaml").write_text(dump_yaml(exported))
    assert not any(value in dump_yaml(exported) for value in SECRET_VALUES.values())

    assert upstream_settings(export_dir / "fastagent.config.yaml") == original


@pytest.mark.parametrize(
    "example", UPSTREAM_EXAMPLES, ids=[p.parent.name for p in UPSTREAM_EXAMPLES]
)
async def test_upstream_example_configs_survive_the_round_trip(
    example: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(example, source / "fastagent.config.yaml")
    original = upstream_settings(source / "fastagent.config.yaml")

    exported = await _through_database(database_url, read_yaml_file(example), None)
    target = tmp_path / "exported"
    target.mkdir()
    (target / "fastagent.config.yaml").write_text(dump_yaml(exported))
    assert upstream_settings(target / "fastagent.config.yaml") == original

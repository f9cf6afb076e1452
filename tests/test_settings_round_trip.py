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


TEMPLATES_CONFIG = """\
default_model: passthrough
logger:
  http_headers: {Authorization: "Bearer ${FA_TPL_LOG_TOKEN}", X-Source: tests}
openai:
  base_url: "https://bob:${FA_TPL_OPENAI_PW}@127.0.0.1:1/v1"
mcp:
  servers:
    remote:
      transport: http
      url: "https://alice:${FA_TPL_ALICE_PW}@127.0.0.1:1/mcp?token=${FA_TPL_URL_TOKEN}&q=1"
      headers: {Authorization: "Bearer ${FA_TPL_TOKEN}", Cookie: "${FA_TPL_COOKIE}"}
    local:
      command: python
      args: [server.py, "--dir=${HOME}"]
      env: {AUTH_HEADER: "Basic ${FA_TPL_USER}:${FA_TPL_PW}", MODE: fast}
"""
TEMPLATE_VALUES = {
    "FA_TPL_LOG_TOKEN": "log-1",
    "FA_TPL_OPENAI_PW": "openai-2",
    "FA_TPL_ALICE_PW": "alice-3",
    "FA_TPL_URL_TOKEN": "url-4",
    "FA_TPL_TOKEN": "token-5",
    "FA_TPL_COOKIE": "cookie-6",
    "FA_TPL_USER": "user-7",
    "FA_TPL_PW": "pw-8",
}


async def test_reference_templates_are_exported_as_written(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template is stored as written (no value resolved), exported as written, and upstream
    loads the export exactly as it loads the original."""
    for name, value in TEMPLATE_VALUES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    (source / "fastagent.config.yaml").write_text(TEMPLATES_CONFIG)
    original = upstream_settings(source / "fastagent.config.yaml")
    assert original["mcp"]["servers"]["remote"]["headers"]["Authorization"] == "Bearer token-5"

    written = read_yaml_file(source / "fastagent.config.yaml")
    exported = await _through_database(database_url, written, None)
    written["mcp"]["servers"]["local"]["transport"] = "stdio"  # stored servers say it
    assert exported == written
    target = tmp_path / "exported"
    target.mkdir()
    (target / "fastagent.config.yaml").write_text(dump_yaml(exported))
    assert not any(value in dump_yaml(exported) for value in TEMPLATE_VALUES.values())
    assert upstream_settings(target / "fastagent.config.yaml") == original


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

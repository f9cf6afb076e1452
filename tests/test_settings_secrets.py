"""Secrets are references or ciphertext at rest, resolved only when used."""

from __future__ import annotations

import pytest
from mcp_agent.core.exceptions import ProviderKeyError
from mcp_agent.llm.provider_key_manager import ProviderKeyManager
from sqlalchemy import inspect, text

from mcp_agent.db.patches.secret_resolution import secret_resolution
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.build import build_settings
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.urls import sqlite_file, to_async_url
from tests.support.cli import ainvoke, invoke

LITERAL_OPENAI = "sk-literal-openai-0123456789"
LITERAL_SERVER = "literal-server-token-9876"


async def dump_database(database_url: str) -> str:
    """Every row of every table as text, plus the raw SQLite files: what a backup holds."""
    parts: list[str] = []
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            for name in names:
                rows = await connection.execute(text(f'SELECT * FROM "{name}"'))
                parts.extend(repr(tuple(row)) for row in rows)
    path = sqlite_file(to_async_url(database_url))
    if path is not None:
        for suffix in ("", "-wal"):
            candidate = path.with_name(path.name + suffix)
            if candidate.exists():
                parts.append(candidate.read_bytes().decode("latin-1"))
    return "\n".join(parts)


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = secrets.generate_key()
    monkeypatch.setenv(secrets.SECRET_KEY_ENV, key)
    return key


@pytest.fixture
def config_with_literals(tmp_path):
    config = tmp_path / "fastagent.config.yaml"
    config.write_text(
        "default_model: passthrough\n"
        "mcp:\n  servers:\n    calc:\n      command: python\n"
        f"      env: {{SERVICE_TOKEN: {LITERAL_SERVER}, MODE: fast}}\n"
    )
    (tmp_path / "fastagent.secrets.yaml").write_text(
        f"openai:\n  api_key: {LITERAL_OPENAI}\nanthropic:\n  api_key: ${{MY_ANTHROPIC_KEY}}\n"
    )
    return config


def test_literal_secrets_are_refused_without_the_flag(database_url, config_with_literals) -> None:
    result = invoke("config", "import", str(config_with_literals), "--database-url", database_url)
    assert result.exit_code == 2
    assert "openai.api_key: holds a literal secret" in result.output
    assert "mcp.servers.calc.env.SERVICE_TOKEN: holds a literal secret" in result.output
    assert LITERAL_OPENAI not in result.output


@pytest.fixture
async def encrypted_import(database_url, config_with_literals, secret_key) -> str:
    """The literal-secrets config imported with --encrypt-secrets; returns the database URL."""
    result = await ainvoke(
        "config",
        "import",
        str(config_with_literals),
        "--encrypt-secrets",
        "--database-url",
        database_url,
    )
    assert result.exit_code == 0, result.output
    return database_url


async def test_encrypted_secrets_never_appear_in_a_dump_an_export_or_the_history(
    encrypted_import: str,
) -> None:
    database_url = encrypted_import
    dump = await dump_database(database_url)
    assert LITERAL_OPENAI not in dump and LITERAL_SERVER not in dump
    assert "enc:v1:" in dump and "env:MY_ANTHROPIC_KEY" in dump

    for command in (["config", "export"], ["config", "show"], ["config", "history"]):
        output = (await ainvoke(*command, "--database-url", database_url)).output
        assert LITERAL_OPENAI not in output and LITERAL_SERVER not in output, command
    export = (await ainvoke("config", "export", "--database-url", database_url)).output
    assert "${OPENAI_API_KEY}" in export and "${MY_ANTHROPIC_KEY}" in export
    assert "enc:v1" not in export


async def test_references_resolve_when_used_and_name_a_missing_variable(
    encrypted_import: str, monkeypatch
) -> None:
    database_url = encrypted_import
    async with await DatabaseRuntime.open(database_url) as runtime:
        document = await SqlSettingsStore(runtime).load_document()
    monkeypatch.delenv("MY_ANTHROPIC_KEY", raising=False)
    settings = build_settings(document, database_url=database_url)  # nothing resolved yet
    assert settings.anthropic.api_key == "env:MY_ANTHROPIC_KEY"
    with secret_resolution():
        _assert_keys_resolve_when_used(settings, monkeypatch)
    # Outside a database-backed run nothing is resolved: upstream's own behaviour.
    assert ProviderKeyManager.get_config_file_key("anthropic", settings) == "env:MY_ANTHROPIC_KEY"


def _assert_keys_resolve_when_used(settings, monkeypatch) -> None:
    assert ProviderKeyManager.get_api_key("openai", settings) == LITERAL_OPENAI
    with pytest.raises(ProviderKeyError) as missing:
        ProviderKeyManager.get_api_key("anthropic", settings)
    assert "MY_ANTHROPIC_KEY" in missing.value.details
    monkeypatch.setenv("MY_ANTHROPIC_KEY", "now-set")
    assert ProviderKeyManager.get_api_key("anthropic", settings) == "now-set"

    monkeypatch.delenv(secrets.SECRET_KEY_ENV)
    with pytest.raises(ProviderKeyError) as no_key:
        ProviderKeyManager.get_api_key("openai", settings)
    assert secrets.SECRET_KEY_ENV in no_key.value.details


def test_a_wrong_key_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(secrets.SECRET_KEY_ENV, secrets.generate_key())
    stored = secrets.as_reference("hunter2-secret", field="x.api_key", encrypt_literals=True)
    monkeypatch.setenv(secrets.SECRET_KEY_ENV, secrets.generate_key())
    with pytest.raises(secrets.SecretError, match="x.api_key: cannot be decrypted"):
        secrets.resolve(stored, field="x.api_key")
    monkeypatch.setenv(secrets.SECRET_KEY_ENV, "not-a-key")
    with pytest.raises(secrets.SecretError, match="config keygen"):
        secrets.resolve(stored, field="x.api_key")


def test_plain_upstream_values_pass_through_the_hook(monkeypatch) -> None:
    from mcp_agent.config import Settings

    with secret_resolution():
        settings = Settings(openai={"api_key": "sk-x"})
        assert ProviderKeyManager.get_api_key("openai", settings) == "sk-x"

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


# --- What is a secret, and how it is stored ------------------------------------------------

SECRET_OR_NOT = [
    # (name, value, from the secrets file, why it is a secret or None)
    ("BRAVE_KEY", "x1", False, "the name 'BRAVE_KEY' contains 'key'"),
    ("PGPASS", "x1", False, "the name 'PGPASS' contains 'pass'"),
    ("X-Goog-Key", "x1", False, "the name 'X-Goog-Key' contains 'key'"),
    ("Cookie", "x1", False, "the name 'Cookie' contains 'cookie'"),
    ("Authorization", "x1", False, "the name 'Authorization' contains 'auth'"),
    ("SESSION_ID", "x1", False, "the name 'SESSION_ID' contains 'session'"),
    ("db_credentials", "x1", False, "the name 'db_credentials' contains 'credential'"),
    ("MODE", "fast", False, None),
    ("args", "fast", True, "a value from the secrets file"),
    ("url", "https://me:pw@host/x", False, "the URL's user-info"),
    ("url", "https://ghp_token@github.com/x", False, "the URL's user-info"),
    ("url", "https://host/x?q=1&token=abc", False, "the URL's query parameter 'token'"),
    ("url", "https://host/x?sig=abc", False, "the URL's query parameter 'sig'"),
    ("args", "--endpoint=https://host/?api_key=abc", False, "the URL's query parameter 'api_key'"),
    ("url", "https://host/x?q=1", False, None),
    ("url", "https://me:@host/x", False, None),  # an empty password hides nothing
    ("BRAVE_API_KEY", "<your_brave_api_key>", False, None),  # upstream's hint, not a secret
    ("API_KEY", "", True, None),
    ("max_tokens", 4096, False, None),  # only strings are secrets
]


@pytest.mark.parametrize(("name", "value", "from_secrets_file", "reason"), SECRET_OR_NOT)
def test_what_is_a_secret(name, value, from_secrets_file, reason) -> None:
    assert secrets.secret_reason(value, name=name, from_secrets_file=from_secrets_file) == reason


STORED_FORMS = [
    # (value, why it is a secret, stored form or the start of the refusal)
    ("${API_TOKEN}", "the name", "env:API_TOKEN"),
    ("env:API_TOKEN", "the name", "env:API_TOKEN"),
    ("Bearer ${API_TOKEN}", "the name", "tpl:Bearer ${API_TOKEN}"),
    ("Basic ${USER}:${PASSWORD}", "the name", "tpl:Basic ${USER}:${PASSWORD}"),
    (
        "https://me:${PW}@host/x?token=${T}&q=1",
        "the URL's user-info",
        "tpl:https://me:${PW}@host/x?token=${T}&q=1",
    ),
    (
        "https://${HOST}/x?key=${K}",
        "a value from the secrets file",
        "tpl:https://${HOST}/x?key=${K}",
    ),
    (
        "Bearer ${API_TOKEN:fallback}",
        "the name",
        "!${API_TOKEN:...}: a secret cannot carry a default",
    ),
    ("hunter2${API_TOKEN}", "the name", "!mixes literal secret text with ${...} references"),
    ("session=${SID}", "the name", "!mixes literal secret text"),
    ("token ${SID}", "the name", "tpl:token ${SID}"),  # a known scheme, any case
    ("swordfish ${SID}", "the name", "!mixes literal secret text"),  # not a scheme
    ("https://me:pw@host/x?token=${T}", "the URL's user-info", "!mixes literal secret text"),
    ("Bearer ${}", "the name", "!has a ${...} that is not a variable reference"),
    ("env:not a name", "the name", "!is not a valid env: reference"),
    ("tpl:no reference", "the name", "!is a tpl: template without any ${NAME} reference"),
    ("Bearer ${FAST_AGENT_DB_SECRET_KEY}", "the name", "!refers to FAST_AGENT_DB_SECRET_KEY"),
    ("literal", "the name", "!holds a literal secret (the name)"),
]


@pytest.mark.parametrize(("value", "reason", "expected"), STORED_FORMS)
def test_how_a_secret_is_stored(value: str, reason: str, expected: str) -> None:
    if not expected.startswith("!"):
        assert (
            secrets.stored_form(value, field="f", reason=reason, encrypt_literals=False) == expected
        )
        return
    with pytest.raises(secrets.SecretError) as refused:
        secrets.stored_form(value, field="f", reason=reason, encrypt_literals=False)
    assert refused.value.reason.startswith(expected[1:]), refused.value.reason
    assert "hunter2" not in str(refused.value) and "fallback" not in str(refused.value)


def test_a_template_with_literal_secret_text_is_refused_even_with_encryption(
    secret_key,
) -> None:
    with pytest.raises(secrets.SecretError, match="mixes literal secret text"):
        secrets.stored_form("pw-${X}", field="f", reason="the name", encrypt_literals=True)
    with pytest.raises(secrets.SecretError, match="cannot carry a default"):
        secrets.stored_form("${X:pw}", field="f", reason="the name", encrypt_literals=True)


def test_encrypting_without_a_key_says_how_to_make_one(monkeypatch) -> None:
    monkeypatch.delenv(secrets.SECRET_KEY_ENV, raising=False)
    with pytest.raises(secrets.SecretError, match="cannot be encrypted: .* config keygen"):
        secrets.stored_form("pw", field="f", reason="the name", encrypt_literals=True)


def test_a_template_resolves_when_used_and_names_a_missing_variable(monkeypatch) -> None:
    monkeypatch.setenv("FA_TEMPLATE_USER", "me")
    monkeypatch.delenv("FA_TEMPLATE_PW", raising=False)
    template = "tpl:https://${FA_TEMPLATE_USER}:${FA_TEMPLATE_PW}@host/x"
    with pytest.raises(secrets.SecretError, match="h.url: refers to the environment variable "):
        secrets.resolve(template, field="h.url")
    monkeypatch.setenv("FA_TEMPLATE_PW", "pw-31337")
    assert secrets.resolve(template, field="h.url") == "https://me:pw-31337@host/x"
    assert secrets.scrub("sent pw-31337 to https://me:pw-31337@host/x") == "sent *** to ***"


def test_templates_resolve_in_the_server_transports(monkeypatch) -> None:
    from mcp_agent.mcp import mcp_connection_manager

    monkeypatch.setenv("FA_TEMPLATE_TOKEN", "tok-8086")
    calls = []
    monkeypatch.setattr(
        mcp_connection_manager,
        "streamablehttp_client",
        lambda *args, **kwargs: calls.append((args, kwargs)),
    )
    with secret_resolution():
        mcp_connection_manager.streamablehttp_client(
            "tpl:https://host/mcp?token=${FA_TEMPLATE_TOKEN}",
            {"Authorization": "tpl:Bearer ${FA_TEMPLATE_TOKEN}", "X-Trace": "on"},
        )
        parameters = mcp_connection_manager.StdioServerParameters(
            command="python",
            args=["--token", "env:FA_TEMPLATE_TOKEN"],
            env={"AUTH": "tpl:Bearer ${FA_TEMPLATE_TOKEN}"},
        )
    assert calls == [
        (
            (
                "https://host/mcp?token=tok-8086",
                {"Authorization": "Bearer tok-8086", "X-Trace": "on"},
            ),
            {},
        )
    ]
    assert parameters.args == ["--token", "tok-8086"] and parameters.env == {
        "AUTH": "Bearer tok-8086"
    }


# --- config set refuses what import refuses -------------------------------------------------

REFUSED_SETS = [
    ("logger.http_headers", "{Authorization: abc123}", "logger.http_headers.Authorization"),
    ("openai.base_url", "https://me:pw123@llm.test/v1", "openai.base_url"),
    ("openai.organization_key", "org-abc123", "openai.organization_key"),
    ("mcp.servers.calc.env", "{PGPASS: pw123}", "mcp.servers.calc.env.PGPASS"),
    ("mcp.servers.calc.url", "https://host/x?token=abc123", "mcp.servers.calc.url"),
]


@pytest.mark.parametrize(("key", "value", "field"), REFUSED_SETS)
async def test_config_set_refuses_a_literal_secret(database_url, key, value, field) -> None:
    added = await ainvoke(
        "servers", "add", "calc", "--command", "python", "--database-url", database_url
    )
    assert added.exit_code == 0, added.output
    history = (await ainvoke("config", "history", "--database-url", database_url)).output
    result = await ainvoke("config", "set", key, value, "--database-url", database_url)
    assert result.exit_code == 2, result.output
    assert f"{field}: holds a literal secret" in result.output
    assert "123" not in result.output
    assert (await ainvoke("config", "history", "--database-url", database_url)).output == history


# --- History keeps no secret, and purge-history removes what older versions kept ------------

LEGACY_BRAVE = "legacy-brave-9b1e77"
LEGACY_PASSWORD = "legacy-password-3a5c21"
LEGACY_PLAIN_NAME = "legacy-under-a-plain-name-64d2"


async def _record_legacy_history(database_url: str) -> None:
    """History rows as versions before the secret rules wrote them: plaintext under a name the
    old keyword list missed, and under a name no rule can recognise."""
    from mcp_agent.db.models import ConfigChangeRow

    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions.begin() as session:
            session.add_all(
                [
                    ConfigChangeRow(
                        entity_type="mcp_server",
                        entity_name="brave",
                        operation="insert",
                        new_value={"command": "npx", "env": {"BRAVE_KEY": LEGACY_BRAVE}},
                    ),
                    ConfigChangeRow(
                        entity_type="mcp_server",
                        entity_name="brave",
                        operation="delete",
                        old_value={"command": "npx", "env": {"BRAVE_KEY": LEGACY_BRAVE}},
                    ),
                    ConfigChangeRow(
                        entity_type="setting",
                        entity_name="mcp.db_password",
                        operation="insert",
                        new_value=LEGACY_PASSWORD,
                    ),
                    ConfigChangeRow(
                        entity_type="setting",
                        entity_name="mcp.note",
                        operation="insert",
                        new_value=LEGACY_PLAIN_NAME,
                    ),
                ]
            )


async def test_overwritten_and_deleted_secrets_leave_no_value_in_history(
    database_url, secret_key
) -> None:
    for value in ("first-secret-1111", "second-secret-2222"):
        result = await ainvoke(
            "config",
            "set",
            "openai.api_key",
            value,
            "--encrypt-secrets",
            "--database-url",
            database_url,
        )
        assert result.exit_code == 0, result.output
    assert (
        await ainvoke("config", "unset", "openai", "--database-url", database_url)
    ).exit_code == 0
    async with await DatabaseRuntime.open(database_url) as runtime:
        changes = await SqlSettingsStore(runtime).history("openai.api_key")
    assert [(change.operation, change.old_value, change.new_value) for change in changes] == [
        ("delete", {"base_url": None, "api_key_ref": "<encrypted>", "options": {}}, None),
        ("update", "<encrypted>", "<encrypted>"),
        ("insert", None, {"base_url": None, "api_key_ref": "<encrypted>", "options": {}}),
    ]
    dump = await dump_database(database_url)
    assert "first-secret" not in dump and "second-secret" not in dump


async def test_history_masks_secrets_recorded_before_the_rules(database_url, monkeypatch) -> None:
    from mcp_agent.db.cli import output

    monkeypatch.setattr(output.console, "width", 5000)  # no value split across table lines
    await _record_legacy_history(database_url)
    shown = (await ainvoke("config", "history", "--database-url", database_url)).output
    assert LEGACY_BRAVE not in shown and LEGACY_PASSWORD not in shown
    assert "<secret>" in shown
    assert LEGACY_PLAIN_NAME in shown, "no rule recognises it: purge-history KEY removes it"


async def test_purge_history_of_a_key_removes_its_values_and_keeps_the_rows(
    database_url,
) -> None:
    await _record_legacy_history(database_url)
    purged = await ainvoke(
        "config",
        "purge-history",
        "mcp.servers.brave.env.BRAVE_KEY",
        "--yes",
        "--database-url",
        database_url,
    )
    assert purged.exit_code == 0, purged.output
    assert "from 2 history row(s)" in purged.output
    purged = await ainvoke(
        "config", "purge-history", "mcp.note", "--yes", "--database-url", database_url
    )
    assert "from 1 history row(s)" in purged.output
    async with await DatabaseRuntime.open(database_url) as runtime:
        changes = await SqlSettingsStore(runtime).history()
    assert len(changes) == 4, "the rows stay"
    brave = [change for change in changes if change.entity_name == "brave"]
    purged_server = {"command": "npx", "env": {"BRAVE_KEY": "<purged>"}}
    assert [change.old_value or change.new_value for change in brave] == [purged_server] * 2
    dump = await dump_database(database_url)  # raw SQLite files included
    assert LEGACY_BRAVE not in dump and LEGACY_PLAIN_NAME not in dump
    assert LEGACY_PASSWORD in dump, "only the named key was purged"

    again = await ainvoke(
        "config", "purge-history", "mcp.note", "--yes", "--database-url", database_url
    )
    assert again.exit_code == 0 and "Nothing to purge" in again.output


async def test_purge_history_all_masks_every_secret_looking_value(database_url) -> None:
    await _record_legacy_history(database_url)
    purged = await ainvoke(
        "config", "purge-history", "--all", "--yes", "--database-url", database_url
    )
    assert purged.exit_code == 0, purged.output
    assert "from 3 history row(s)" in purged.output
    dump = await dump_database(database_url)
    assert LEGACY_BRAVE not in dump and LEGACY_PASSWORD not in dump
    assert LEGACY_PLAIN_NAME in dump, "--all masks what looks secret; name a key for the rest"


PURGE_REFUSALS = [
    ([], "give a KEY"),
    (["mcp.note", "--all"], "give a KEY"),
    (["mcp.servers.ghost"], "mcp.servers.ghost: no recorded changes"),
    (["mcp.note"], "needs confirmation: pass --yes"),  # not on a terminal
]


@pytest.mark.parametrize(("arguments", "expected"), PURGE_REFUSALS)
async def test_purge_history_refusals_change_nothing(database_url, arguments, expected) -> None:
    await _record_legacy_history(database_url)
    before = await dump_database(database_url)
    result = await ainvoke("config", "purge-history", *arguments, "--database-url", database_url)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert await dump_database(database_url) == before

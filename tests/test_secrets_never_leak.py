"""Nothing lost, nothing leaked (issue #13, secrets): a secret planted anywhere a configuration
can hold one is refused with a clear error naming the field, or, with --encrypt-secrets, stored
encrypted; afterwards no table, export, `config show`/`history` or `servers list`/`show` output
holds the planted value. Reference templates (`Bearer ${API_TOKEN}`) are stored and exported as
they are and resolved only when used; the deny list keeps FAST_AGENT_DB_SECRET_KEY (and the
database URL) out of settings and out of every MCP server's environment.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp.client.stdio import get_default_environment
from mcp_agent.core.exceptions import ServerInitializationError
from mcp_agent.mcp import mcp_connection_manager
from sqlalchemy import inspect, text

from mcp_agent.db.cli import output
from mcp_agent.db.patches.secret_resolution import secret_resolution
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import secrets
from mcp_agent.db.settings.build import build_settings
from mcp_agent.db.settings.document import ConfigDocument, ServerConfig, deep_merge
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.tour import calculator_server
from mcp_agent.db.urls import sqlite_file, to_async_url
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

BRAVE = "planted-brave-3f9c1a"
PGPASS = "planted-pgpass-77d0e2"
GOOG = "planted-goog-5b8e44"
COOKIE = "planted-cookie-c2a9f7"
LOGGER_AUTH = "planted-logger-9e1d30"
URL_USERINFO = "planted-userinfo-4c7b18"
URL_TOKEN = "planted-urltoken-a61f0d"
BASE_URL_USERINFO = "planted-baseurl-0d93be"
SECRETS_FILE_ARG = "planted-arg-6e2f5c"


def _servers(**servers: dict[str, Any]) -> dict[str, Any]:
    return {"mcp": {"servers": servers}}


@dataclass(frozen=True)
class Plant:
    """One planted secret: the files that hold it, and the field a refusal must name."""

    id: str
    value: str
    field: str
    config: dict[str, Any]
    secrets: dict[str, Any] = field(default_factory=dict)


PLANTS = [
    Plant(
        "env-BRAVE_KEY",
        BRAVE,
        "mcp.servers.local.env.BRAVE_KEY",
        _servers(local={"command": "python", "args": ["server.py"], "env": {"BRAVE_KEY": BRAVE}}),
    ),
    Plant(
        "env-PGPASS",
        PGPASS,
        "mcp.servers.local.env.PGPASS",
        _servers(local={"command": "python", "args": ["server.py"], "env": {"PGPASS": PGPASS}}),
    ),
    Plant(
        "header-X-Goog-Key",
        GOOG,
        "mcp.servers.remote.headers.X-Goog-Key",
        _servers(
            remote={
                "transport": "sse",
                "url": "https://mcp.example.test/sse",
                "headers": {"X-Goog-Key": GOOG},
            }
        ),
    ),
    Plant(
        "header-Cookie",
        COOKIE,
        "mcp.servers.remote.headers.Cookie",
        _servers(
            remote={
                "transport": "sse",
                "url": "https://mcp.example.test/sse",
                "headers": {"Cookie": COOKIE},
            }
        ),
    ),
    Plant(
        "logger-http_headers-Authorization",
        LOGGER_AUTH,
        "logger.http_headers.Authorization",
        {"logger": {"type": "none", "http_headers": {"Authorization": LOGGER_AUTH}}},
    ),
    Plant(
        "server-url-userinfo",
        URL_USERINFO,
        "mcp.servers.userinfo.url",
        _servers(
            userinfo={
                "transport": "sse",
                "url": f"https://alice:{URL_USERINFO}@mcp.example.test/sse",
            }
        ),
    ),
    Plant(
        "server-url-token",
        URL_TOKEN,
        "mcp.servers.tokened.url",
        _servers(
            tokened={"transport": "http", "url": f"https://mcp.example.test/mcp?token={URL_TOKEN}"}
        ),
    ),
    Plant(
        "provider-base_url-userinfo",
        BASE_URL_USERINFO,
        "openai.base_url",
        {"openai": {"base_url": f"https://bob:{BASE_URL_USERINFO}@llm.example.test/v1"}},
    ),
    Plant(
        "secrets-file-value-in-args",
        SECRETS_FILE_ARG,
        "mcp.servers.local.args.1",
        _servers(local={"command": "python", "args": ["server.py"]}),
        secrets=_servers(local={"args": ["server.py", SECRETS_FILE_ARG]}),
    ),
]
PLANTED_VALUES = [plant.value for plant in PLANTS]
BASELINE = {"default_model": "passthrough", "logger": {"type": "none"}}


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = secrets.generate_key()
    monkeypatch.setenv(secrets.SECRET_KEY_ENV, key)
    return key


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output is never wrapped, so a printed value could not hide across two table lines."""
    monkeypatch.setattr(output.console, "width", 5000)
    monkeypatch.setattr(output.error_console, "width", 5000)


def write_files(directory: Path, config: dict[str, Any], secrets_yaml: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "fastagent.config.yaml"
    config_path.write_text(yaml.safe_dump(deep_merge(BASELINE, config), sort_keys=False))
    if secrets_yaml:
        (directory / "fastagent.secrets.yaml").write_text(yaml.safe_dump(secrets_yaml))
    return config_path


async def dump_tables(database_url: str) -> str:
    """Every column of every fa_* table, as text."""
    parts: list[str] = []
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            for name in sorted(name for name in names if name.startswith("fa_")):
                rows = await connection.execute(text(f'SELECT * FROM "{name}"'))
                parts.extend(f"{name}: " + " | ".join(map(str, row)) for row in rows)
    return "\n".join(parts)


def raw_sqlite_files(database_url: str) -> str:
    """The SQLite database and its WAL as bytes: what a copy of the file would give away."""
    path = sqlite_file(to_async_url(database_url))
    if path is None:
        return ""
    candidates = (path.with_name(path.name + suffix) for suffix in ("", "-wal"))
    return "\n".join(c.read_bytes().decode("latin-1") for c in candidates if c.exists())


async def everything_shown(database_url: str, *, servers: list[str]) -> dict[str, str]:
    """What a user (or a log of the commands) sees: export, show, history, servers."""
    commands = [
        ["config", "export"],
        ["config", "show"],
        ["config", "history"],
        ["servers", "list"],
        *(["servers", "show", name] for name in servers),
    ]
    shown: dict[str, str] = {}
    for command in commands:
        result = await ainvoke(*command, "--database-url", database_url)
        assert result.exit_code == 0, (command, result.output)
        shown[" ".join(command)] = result.output
    return shown


def assert_nothing_leaked(places: dict[str, str], values: list[str]) -> None:
    leaks = [
        (where, value) for where, text_ in places.items() for value in values if value in text_
    ]
    assert not leaks, f"planted values found: {leaks}"


async def import_files(database_url: str, config_path: Path, *extra: str) -> Any:
    return await ainvoke(
        "config", "import", str(config_path), *extra, "--database-url", database_url
    )


@pytest.mark.parametrize("plant", PLANTS, ids=[plant.id for plant in PLANTS])
async def test_a_planted_secret_is_refused_naming_the_field_and_nothing_changes(
    plant: Plant, database_url: str, tmp_path: Path
) -> None:
    baseline = write_files(tmp_path / "baseline", {}, {})
    assert (await import_files(database_url, baseline)).exit_code == 0
    tables_before = await dump_tables(database_url)

    config_path = write_files(tmp_path / "planted", plant.config, plant.secrets)
    result = await import_files(database_url, config_path)

    assert result.exit_code == 2, result.output
    assert f"{plant.field}: holds a literal secret" in result.output
    origin = "fastagent.secrets.yaml" if plant.secrets else "fastagent.config.yaml"
    assert str(config_path.with_name(origin)) in result.output, "names the file"
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert plant.value not in result.output
    assert await dump_tables(database_url) == tables_before, "nothing changed"


@pytest.mark.parametrize("plant", PLANTS, ids=[plant.id for plant in PLANTS])
async def test_a_planted_secret_is_stored_encrypted_and_never_shown(
    plant: Plant, database_url: str, tmp_path: Path, secret_key: str
) -> None:
    config_path = write_files(tmp_path, plant.config, plant.secrets)
    result = await import_files(database_url, config_path, "--encrypt-secrets")
    assert result.exit_code == 0, result.output

    tables = await dump_tables(database_url)
    assert secrets.ENCRYPTED_PREFIX in tables
    servers = list(_servers_of(plant.config))
    places = {
        "import": result.output,
        "tables": tables,
        "files": raw_sqlite_files(database_url),
        **await everything_shown(database_url, servers=servers),
    }
    assert_nothing_leaked(places, [plant.value, secret_key])


def _servers_of(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("mcp", {}).get("servers", {})


def every_plant_at_once(directory: Path) -> Path:
    config: dict[str, Any] = {}
    secrets_yaml: dict[str, Any] = {}
    for plant in PLANTS:
        config = deep_merge(config, plant.config)
        secrets_yaml = deep_merge(secrets_yaml, plant.secrets)
    return write_files(directory, config, secrets_yaml)


async def test_every_place_at_once_refused_then_encrypted_overwritten_and_deleted(
    database_url: str, tmp_path: Path, secret_key: str
) -> None:
    config_path = every_plant_at_once(tmp_path)
    tables_before = await dump_tables(database_url)
    refused = await import_files(database_url, config_path)
    assert refused.exit_code == 2
    for plant in PLANTS:
        assert f"{plant.field}: holds a literal secret" in refused.output, plant.id
    assert_nothing_leaked({"refusal": refused.output}, PLANTED_VALUES)
    assert await dump_tables(database_url) == tables_before, "nothing changed"

    imported = await import_files(database_url, config_path, "--encrypt-secrets")
    assert imported.exit_code == 0, imported.output
    # Overwrite and delete secrets: history must not keep the old values either.
    for command in (
        ["config", "set", "mcp.servers.local.env", "{BRAVE_KEY: env:NEW_BRAVE, PGPASS: env:PG}"],
        ["config", "set", "logger.http_headers", "{Authorization: 'Bearer ${LOG_TOKEN}'}"],
        ["config", "unset", "openai.base_url"],
        ["servers", "remove", "remote"],
        ["servers", "remove", "userinfo"],
    ):
        result = await ainvoke(*command, "--database-url", database_url)
        assert result.exit_code == 0, (command, result.output)

    places = {
        "tables": await dump_tables(database_url),
        "files": raw_sqlite_files(database_url),
        **await everything_shown(database_url, servers=["local", "tokened"]),
    }
    assert_nothing_leaked(places, [*PLANTED_VALUES, secret_key])
    assert "Bearer ${LOG_TOKEN}" in places["config export"], "a template is exported as is"


async def test_encrypted_secrets_resolve_where_they_are_used(
    database_url: str, tmp_path: Path, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = every_plant_at_once(tmp_path)
    assert (await import_files(database_url, config_path, "--encrypt-secrets")).exit_code == 0
    async with await DatabaseRuntime.open(database_url) as runtime:
        document = await SqlSettingsStore(runtime).load_document()

    settings = build_settings(document, database_url=database_url)
    # Not resolved by a server or a request: resolved when the run's settings are built.
    assert settings.openai.base_url == f"https://bob:{BASE_URL_USERINFO}@llm.example.test/v1"
    assert settings.logger.http_headers == {"Authorization": LOGGER_AUTH}
    # Server secrets stay references in the settings until the server starts.
    local, remote = settings.mcp.servers["local"], settings.mcp.servers["remote"]
    assert local.env["BRAVE_KEY"].startswith(secrets.ENCRYPTED_PREFIX)

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(
        mcp_connection_manager, "sse_client", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    with secret_resolution():
        parameters = mcp_connection_manager.StdioServerParameters(
            command=local.command, args=local.args, env=local.env
        )
        mcp_connection_manager.sse_client(
            settings.mcp.servers["userinfo"].url, remote.headers, sse_read_timeout=5
        )
    assert parameters.env == {"BRAVE_KEY": BRAVE, "PGPASS": PGPASS}
    assert parameters.args == ["server.py", SECRETS_FILE_ARG]
    (args, kwargs) = calls[0]
    assert args == (
        f"https://alice:{URL_USERINFO}@mcp.example.test/sse",
        {"X-Goog-Key": GOOG, "Cookie": COOKIE},
    )
    assert kwargs == {"sse_read_timeout": 5}


# --- Reference templates ------------------------------------------------------------------


@pytest.mark.slow
async def test_a_template_is_stored_and_exported_as_is_and_resolved_when_the_server_starts(
    database_url: str, tmp_path: Path, secret_key: str
) -> None:
    config_path = write_files(
        tmp_path / "config",
        {
            "logger": {"progress_display": False, "show_chat": False, "show_tools": False},
            **_servers(
                calc={
                    "command": sys.executable,
                    "args": [str(Path(calculator_server.__file__))],
                    "env": {"AUTH_HEADER": "Bearer ${FA_LEAK_API_TOKEN}"},
                }
            ),
        },
        {},
    )
    imported = await import_files(database_url, config_path)
    assert imported.exit_code == 0, imported.output
    exported = yaml.safe_load(
        (await ainvoke("config", "export", "--database-url", database_url)).output
    )
    assert exported["mcp"]["servers"]["calc"]["env"] == {
        "AUTH_HEADER": "Bearer ${FA_LEAK_API_TOKEN}"
    }

    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from mcp_agent.db import FastAgent

            fast = FastAgent("templates", database_url=os.environ["DB_URL"], parse_cli_args=False)

            @fast.agent(name="calc", servers=["calc"])
            async def main():
                async with fast.run() as app:
                    for name in ("AUTH_HEADER", "FAST_AGENT_DB_SECRET_KEY"):
                        call = '***CALL_TOOL calc-env_var {"name": "%s"}' % name
                        print(f"{name} =", await app.calc.send(call))

            asyncio.run(main())
            """
        )
    )
    environment = {**os.environ, "DB_URL": database_url, "FA_LEAK_API_TOKEN": "tok-5150"}
    run = run_guarded(
        [sys.executable, "agent.py"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "AUTH_HEADER = Bearer tok-5150" in run.stdout, run.stdout
    # The run's parent has the key set; the server never sees it.
    assert "FAST_AGENT_DB_SECRET_KEY = <unset>" in run.stdout, run.stdout
    async with await DatabaseRuntime.open(database_url) as runtime:
        document = await SqlSettingsStore(runtime).load_document()
    assert document.servers["calc"].env == {"AUTH_HEADER": "tpl:Bearer ${FA_LEAK_API_TOKEN}"}


# --- The deny list ------------------------------------------------------------------------

DENIED = [
    pytest.param(
        _servers(s={"command": "python", "env": {"API_KEY": "env:FAST_AGENT_DB_SECRET_KEY"}}),
        "mcp.servers.s.env.API_KEY: refers to FAST_AGENT_DB_SECRET_KEY",
        id="env-reference",
    ),
    pytest.param(
        _servers(s={"command": "python", "env": {"PLAIN": "${FAST_AGENT_DB_SECRET_KEY}"}}),
        "mcp.servers.s.env.PLAIN: refers to FAST_AGENT_DB_SECRET_KEY",
        id="placeholder-under-a-plain-name",
    ),
    pytest.param(
        _servers(s={"command": "python", "args": ["--key", "${FAST_AGENT_DB_SECRET_KEY:x}"]}),
        "mcp.servers.s.args.1: refers to FAST_AGENT_DB_SECRET_KEY",
        id="placeholder-with-default-in-args",
    ),
    pytest.param(
        _servers(
            s={
                "transport": "http",
                "url": "http://127.0.0.1:1/mcp",
                "headers": {"Authorization": "Bearer ${FAST_AGENT_DB_SECRET_KEY}"},
            }
        ),
        "mcp.servers.s.headers.Authorization: refers to FAST_AGENT_DB_SECRET_KEY",
        id="template",
    ),
    pytest.param(
        {"anthropic": {"api_key": "${FAST_AGENT_DATABASE_URL}"}},
        "anthropic.api_key: refers to FAST_AGENT_DATABASE_URL",
        id="database-url",
    ),
    pytest.param(
        _servers(s={"command": "python", "env": {"FAST_AGENT_DB_SECRET_KEY": "env:OTHER"}}),
        "mcp.servers.s.env.FAST_AGENT_DB_SECRET_KEY: a server's environment cannot set",
        id="env-name",
    ),
]


@pytest.mark.parametrize(("config", "expected"), DENIED)
async def test_a_denied_variable_is_refused_at_import(
    config: dict[str, Any], expected: str, database_url: str, tmp_path: Path, secret_key: str
) -> None:
    config_path = write_files(tmp_path, config, {})
    tables_before = await dump_tables(database_url)
    for flags in ((), ("--encrypt-secrets",)):
        result = await import_files(database_url, config_path, *flags)
        assert result.exit_code == 2, result.output
        assert expected in result.output
        assert secret_key not in result.output
    assert await dump_tables(database_url) == tables_before, "nothing changed"


@pytest.fixture
def stored_reference_to_the_key() -> Iterator[ConfigDocument]:
    """A document as rows edited by hand would give it: no import checked it."""
    yield ConfigDocument(
        servers={
            "s": ServerConfig(
                command="python",
                args=["${FAST_AGENT_DB_SECRET_KEY}"],
                env={"A": "env:FAST_AGENT_DB_SECRET_KEY"},
            )
        }
    )


def test_a_denied_variable_is_refused_at_resolution(
    secret_key: str, stored_reference_to_the_key: ConfigDocument
) -> None:
    with pytest.raises(secrets.SecretError, match="x.api_key: refers to FAST_AGENT_DB_SECRET_KEY"):
        secrets.resolve("env:FAST_AGENT_DB_SECRET_KEY", field="x.api_key")
    with pytest.raises(secrets.SecretError, match="refers to FAST_AGENT_DB_SECRET_KEY"):
        secrets.resolve("tpl:Bearer ${FAST_AGENT_DB_SECRET_KEY}", field="x")
    with pytest.raises(secrets.SecretError, match="mcp.servers.s.args.0: refers to"):
        build_settings(stored_reference_to_the_key, database_url="sqlite:///x.db")

    with secret_resolution():
        with pytest.raises(ServerInitializationError) as refused:
            mcp_connection_manager.StdioServerParameters(
                command="python", env={"A": "env:FAST_AGENT_DB_SECRET_KEY"}
            )
        assert "refers to FAST_AGENT_DB_SECRET_KEY" in str(refused.value.details)
        # Named by a server's env config (or by a caller): dropped from its environment.
        parameters = mcp_connection_manager.StdioServerParameters(
            command="python",
            env={**get_default_environment(), secrets.SECRET_KEY_ENV: secret_key, "MODE": "x"},
        )
    assert secrets.SECRET_KEY_ENV not in parameters.env
    assert parameters.env["MODE"] == "x"

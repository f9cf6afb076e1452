"""/v1/settings, /v1/providers, /v1/models and /v1/servers: what `config`, `models` and
`servers` do, through the same stores: validated the same way, recorded in the history with
the token as author, secrets only as references, and a bad request changing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from mcp_agent.db.settings.secrets import ENCRYPTED_MASK, SECRET_KEY_ENV
from tests.support.api import ApiClient, api_client, assert_problem
from tests.support.cli import ainvoke

CONFIG: dict[str, Any] = {
    "default_model": "passthrough",
    "logger": {"level": "info"},
    "openai": {"api_key": "${OPENAI_API_KEY}", "base_url": "https://api.openai.com/v1"},
    "mcp": {
        "servers": {
            "fetch": {
                "command": "uvx",
                "args": ["mcp-server-fetch"],
                "env": {"FETCH_TOKEN": "env:FETCH_TOKEN"},
            }
        }
    },
}


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url, token_name="designer") as client:
        yield client


async def _stored_rows(client: ApiClient) -> tuple[Any, ...]:
    """Every settings table's rows: what 'nothing changed' is checked against."""
    tables = ("fa_settings", "fa_providers", "fa_mcp_servers", "fa_models", "fa_config_changes")
    async with client.runtime.sessions() as session:
        return tuple(
            [
                (await session.execute(text(f"SELECT * FROM {table} ORDER BY 1"))).all()
                for table in tables
            ]
        )


# ---------------------------------------------------------------------------------------------
# /v1/settings


async def test_whole_document_put_get_and_history(api: ApiClient, database_url: str) -> None:
    written = await api.put("/v1/settings", json=CONFIG)
    assert written.status_code == 200, written.text
    keys = {change["key"] for change in written.json()["changes"]}
    assert keys == {"default_model", "logger.level", "openai", "mcp.servers.fetch"}
    assert all(change["changed_by"] == "api:designer" for change in written.json()["changes"])

    document = (await api.get("/v1/settings")).json()
    assert document["openai"]["api_key"] == "env:OPENAI_API_KEY"
    assert document["mcp"]["servers"]["fetch"]["env"] == {"FETCH_TOKEN": "env:FETCH_TOKEN"}

    # What the CLI shows is what the API wrote.
    shown = await ainvoke("config", "show", "--json", "--database-url", database_url)
    assert '"api_key": "env:OPENAI_API_KEY"' in shown.stdout

    # Writing back what was read changes nothing.
    again = await api.put("/v1/settings", json=document)
    assert again.status_code == 200 and again.json() == {"changes": []}

    merged = await api.put("/v1/settings?merge=true", json={"logger": {"level": "debug"}})
    assert [c["key"] for c in merged.json()["changes"]] == ["logger.level"]
    assert (await api.get("/v1/settings")).json()["default_model"] == "passthrough"

    history = (await api.get("/v1/settings/history?key=logger.level")).json()
    assert [(c["operation"], c["new_value"]) for c in history["items"]] == [
        ("update", "debug"),
        ("insert", "info"),
    ]
    cli_history = await ainvoke("config", "history", "--json", "--database-url", database_url)
    assert cli_history.stdout.count("api:designer") == 5


async def test_dotted_keys_get_set_unset(api: ApiClient) -> None:
    await api.put("/v1/settings", json=CONFIG)
    assert (await api.get("/v1/settings/keys/logger.level")).json() == {
        "key": "logger.level",
        "value": "info",
    }
    fetch_env = await api.get("/v1/settings/keys/mcp.servers.fetch.env.FETCH_TOKEN")
    assert fetch_env.json()["value"] == "env:FETCH_TOKEN"

    changed = await api.put("/v1/settings/keys/logger.level", json={"value": "warning"})
    assert changed.status_code == 200
    assert changed.json()["changes"][0]["old_value"] == "info"
    assert (await api.get("/v1/settings/keys/logger.level")).json()["value"] == "warning"
    args = await api.put("/v1/settings/keys/mcp.servers.fetch.args", json={"value": ["a", "b"]})
    assert args.status_code == 200, args.text
    assert (await api.get("/v1/settings/keys/mcp.servers.fetch.args")).json()["value"] == ["a", "b"]

    removed = await api.delete("/v1/settings/keys/logger.level")
    assert [c["operation"] for c in removed.json()["changes"]] == ["delete"]
    assert_problem(await api.get("/v1/settings/keys/logger.level"), 404)
    assert_problem(await api.delete("/v1/settings/keys/logger.level"), 404)


#: (method, path, JSON body, the field the problem must name: None for the body as a whole)
BAD_REQUESTS: list[tuple[str, str, Any, str | None]] = [
    ("PUT", "/v1/settings/keys/logger.level", {"value": "loud"}, "logger.level"),
    ("PUT", "/v1/settings/keys/no_such_setting", {"value": 1}, "no_such_setting"),
    ("PUT", "/v1/settings/keys/openai.api_key", {"value": "sk-literal-1234"}, "openai.api_key"),
    ("PUT", "/v1/settings/keys/default_model", {"value": "no-such-model"}, "default_model"),
    ("PUT", "/v1/settings/keys/default_model", {}, "value"),
    ("PUT", "/v1/settings/keys/default_model", {"value": "a\x00b"}, "value"),
    ("PUT", "/v1/settings", {"anthropic": {"api_key": "sk-ant-literal"}}, "anthropic.api_key"),
    ("PUT", "/v1/settings", {"logger": {"level": "loud"}}, "logger.level"),
    ("PUT", "/v1/settings", {"nonsense": 1}, "nonsense"),
    ("PUT", "/v1/settings", [1, 2], None),
    ("PUT", "/v1/providers/openai", {"api_key": "sk-literal"}, "openai.api_key"),
    ("PUT", "/v1/providers/nosuch", {}, "name"),
    ("PUT", "/v1/providers/openai", {"apikey": "env:X"}, "apikey"),
    ("PUT", "/v1/servers/s", {"transport": "carrier-pigeon"}, "mcp.servers.s.transport"),
    (
        "PUT",
        "/v1/servers/s",
        {"command": "x", "env": {"API_KEY": "plain-secret-987"}},
        "mcp.servers.s.env.API_KEY",
    ),
    ("PUT", "/v1/servers/s", {"command": "x", "colour": "red"}, "colour"),
    ("PUT", "/v1/servers/s", {"name": "other", "command": "x"}, "name"),
    ("PUT", "/v1/models/openai/m", {"input_price_per_mtok": -1}, "input_price_per_mtok"),
    ("PUT", "/v1/models/openai/m", {"input_price_per_mtok": "1e20"}, "input_price_per_mtok"),
    ("PUT", "/v1/models/openai/m", {"context_window": 0}, "context_window"),
    ("PUT", "/v1/models/nosuch/m", {"input_price_per_mtok": 1}, "provider"),
]


async def test_bad_input_is_a_problem_naming_the_field_and_changes_nothing(
    api: ApiClient,
) -> None:
    # One database for every case (a fresh one each would cost more than the cases): each
    # refused request must leave every settings table exactly as it was.
    await api.put("/v1/settings", json=CONFIG)
    before = await _stored_rows(api)
    for method, path, body, field in BAD_REQUESTS:
        response = await api.request(method, path, json=body)
        case = f"{method} {path} {body!r}"
        assert response.status_code == 422, f"{case}: {response.text}"
        problem = assert_problem(response, 422, *([field] if field else []))
        assert "Nothing was changed" in problem["detail"], case
        for literal in ("sk-literal-1234", "sk-ant-literal", "sk-literal", "plain-secret-987"):
            if literal in str(body):
                assert literal not in response.text, f"{case}: a refused secret was echoed"
        assert await _stored_rows(api) == before, f"{case} changed something"


async def test_a_page_of_history_follows_from_the_last(api: ApiClient) -> None:
    for level in ("debug", "info", "warning", "error", "info"):
        await api.put("/v1/settings/keys/logger.level", json={"value": level})
    seen: list[Any] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/settings/history?{query}")).json()
        seen.extend(change["new_value"] for change in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["info", "error", "warning", "info", "debug"]


# ---------------------------------------------------------------------------------------------
# Secrets: references only, encrypted values masked and kept


async def test_encrypted_secrets_are_masked_and_survive_a_read_write_cycle(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, Fernet.generate_key().decode())
    literal = "sk-very-secret-value-123"
    stored = await api.put(
        "/v1/providers/anthropic?encrypt_secrets=true", json={"api_key": literal}
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["api_key"] == ENCRYPTED_MASK
    server = await api.put(
        "/v1/servers/search?encrypt_secrets=true",
        json={"command": "brave", "env": {"BRAVE_API_KEY": literal, "REGION": "eu"}},
    )
    assert server.status_code == 201, server.text
    assert server.json()["env"] == {"BRAVE_API_KEY": ENCRYPTED_MASK, "REGION": "eu"}

    for path in ("/v1/settings", "/v1/providers", "/v1/servers", "/v1/settings/history"):
        response = await api.get(path)
        assert literal not in response.text, path
    async with api.runtime.sessions() as session:
        for table in ("fa_providers", "fa_mcp_servers", "fa_config_changes"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            assert literal not in repr(rows), table

    # Sent back as read, each masked value keeps the stored one: nothing changes.
    document = (await api.get("/v1/settings")).json()
    assert (await api.put("/v1/settings", json=document)).json() == {"changes": []}
    provider = (await api.get("/v1/providers/anthropic")).json()
    provider_body = {key: provider[key] for key in ("base_url", "api_key", "options")}
    unchanged = await api.put("/v1/providers/anthropic", json=provider_body)
    assert unchanged.status_code == 200 and unchanged.json()["api_key"] == ENCRYPTED_MASK
    server_back = await api.put("/v1/servers/search", json=server.json())
    assert server_back.status_code == 200, server_back.text
    history = (await api.get("/v1/settings/history")).json()["items"]
    assert len(history) == 2  # the two inserts, nothing since


# ---------------------------------------------------------------------------------------------
# /v1/providers


async def test_providers_put_get_list_delete(api: ApiClient) -> None:
    created = await api.put(
        "/v1/providers/generic",
        json={
            "base_url": "http://localhost:11434/v1",
            "api_key": "${OLLAMA_KEY}",
            "options": {},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "generic",
        "base_url": "http://localhost:11434/v1",
        "api_key": "env:OLLAMA_KEY",
        "options": {},
    }
    replaced = await api.put("/v1/providers/generic", json={"base_url": "http://other/v1"})
    assert replaced.status_code == 200
    assert replaced.json()["api_key"] is None
    assert [p["name"] for p in (await api.get("/v1/providers")).json()["items"]] == ["generic"]
    assert_problem(await api.get("/v1/providers/anthropic"), 404)
    assert_problem(await api.get("/v1/providers/nosuch"), 404)
    deleted = await api.delete("/v1/providers/generic")
    assert deleted.status_code == 200 and deleted.json()["changes"][0]["operation"] == "delete"
    assert (await api.get("/v1/providers")).json()["items"] == []


# ---------------------------------------------------------------------------------------------
# /v1/models


async def test_models_list_filter_paginate_and_set_prices(
    api: ApiClient, database_url: str
) -> None:
    seeded = (await api.get("/v1/models?provider=anthropic&limit=200")).json()["items"]
    assert seeded and all(model["provider"] == "anthropic" for model in seeded)

    names: list[str] = []
    cursor = None
    while True:
        query = "limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/models?{query}")).json()
        names.extend(f"{m['provider']}/{m['model']}" for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(names) and len(names) == len(set(names)) > 7

    created = await api.put(
        "/v1/models/openrouter/meta-llama/llama-3.1-8b",
        json={
            "input_price_per_mtok": "0.05",
            "output_price_per_mtok": 0.08,
            "context_window": 8192,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["input_price_per_mtok"] == "0.05"
    assert created.json()["model"] == "meta-llama/llama-3.1-8b"
    fetched = await api.get("/v1/models/openrouter/meta-llama/llama-3.1-8b")
    assert fetched.json()["output_price_per_mtok"] == "0.08"

    updated = await api.put(
        "/v1/models/openrouter/meta-llama/llama-3.1-8b", json={"output_price_per_mtok": "0.1"}
    )
    assert updated.status_code == 200
    assert updated.json()["input_price_per_mtok"] == "0.05"  # left out: unchanged
    assert updated.json()["output_price_per_mtok"] == "0.1"
    cleared = await api.put(
        "/v1/models/openrouter/meta-llama/llama-3.1-8b", json={"input_price_per_mtok": None}
    )
    assert cleared.json()["input_price_per_mtok"] is None

    shown = await ainvoke(
        "models", "list", "--provider", "openrouter", "--json", "--database-url", database_url
    )
    assert '"output_price_per_mtok": "0.1"' in shown.stdout
    history = (await api.get("/v1/settings/history?key=openrouter/meta-llama/llama-3.1-8b")).json()
    assert history["items"] and all(c["changed_by"] == "api:designer" for c in history["items"])
    assert_problem(await api.get("/v1/models/openrouter/nosuch"), 404)


# ---------------------------------------------------------------------------------------------
# /v1/servers


async def test_servers_put_get_list_filter_delete(api: ApiClient, database_url: str) -> None:
    created = await api.put(
        "/v1/servers/calculator",
        json={
            "command": "python",
            "args": ["calculator.py"],
            "env": {"CALC_TOKEN": "${CALC_TOKEN}"},
            "headers": None,
        },
    )
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["name"] == "calculator" and server["env"] == {"CALC_TOKEN": "env:CALC_TOKEN"}
    remote = await api.put(
        "/v1/servers/remote",
        json={
            "transport": "http",
            "url": "https://mcp.example/mcp",
            "headers": {"Authorization": "Bearer ${REMOTE_TOKEN}"},
        },
    )
    assert remote.status_code == 201, remote.text
    assert remote.json()["headers"] == {"Authorization": "tpl:Bearer ${REMOTE_TOKEN}"}

    listed = (await api.get("/v1/servers")).json()
    assert [s["name"] for s in listed["items"]] == ["calculator", "remote"]
    only_http = (await api.get("/v1/servers?transport=http")).json()
    assert [s["name"] for s in only_http["items"]] == ["remote"]
    assert_problem(await api.get("/v1/servers?transport=pigeon"), 422, "transport")
    shown = await ainvoke("servers", "show", "remote", "--json", "--database-url", database_url)
    assert "tpl:Bearer ${REMOTE_TOKEN}" in shown.stdout

    replaced = await api.put("/v1/servers/calculator", json={**server, "args": ["calc2.py"]})
    assert replaced.status_code == 200 and replaced.json()["args"] == ["calc2.py"]

    used = await api.post(
        "/v1/agents",
        json={
            "name": "calc-user",
            "type": "agent",
            "model": "passthrough",
            "servers": ["calculator"],
        },
    )
    assert used.status_code == 201, used.text
    conflict = assert_problem(await api.delete("/v1/servers/calculator"), 409)
    assert "calc-user" in conflict["detail"]
    assert (await api.delete("/v1/servers/remote")).status_code == 204
    assert_problem(await api.get("/v1/servers/remote"), 404)
    assert_problem(await api.delete("/v1/servers/remote"), 404)

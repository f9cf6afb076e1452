"""The REST API's frame: tokens (hashed, revocable), the bearer check on every route but
health, problem+json errors, bounded bodies and pages, OpenAPI 3.1, and `serve`'s refusal to
listen beyond loopback without a token. In-process (httpx over ASGITransport) on both backends.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from mcp_agent.db.api import create_app
from mcp_agent.db.api.pagination import MAX_PAGE_SIZE, PageRequest, encode_cursor, paginate
from mcp_agent.db.cli.serve import is_loopback
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.models import ApiTokenRow
from mcp_agent.db.schema_head import SCHEMA_HEAD
from mcp_agent.db.tokens.in_memory import InMemoryTokenStore
from mcp_agent.db.tokens.sql import SqlTokenStore
from mcp_agent.db.tokens.values import parse_token_value
from tests.support.api import ApiClient, api_client, assert_problem
from tests.support.cli import ainvoke

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiClient]:
    async with api_client(database_url) as client:
        yield client


async def _config_change_count(client: ApiClient) -> int:
    async with client.runtime.sessions() as session:
        return int(await session.scalar(text("SELECT count(*) FROM fa_config_changes")) or 0)


# ---------------------------------------------------------------------------------------------
# Health and OpenAPI


async def test_health_answers_without_a_token(api: ApiClient) -> None:
    anonymous = {"Authorization": ""}
    health = await api.get("/healthz", headers=anonymous)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await api.get("/readyz", headers=anonymous)
    assert ready.status_code == 200, ready.text
    assert ready.json()["schema_revision"] == SCHEMA_HEAD == ready.json()["schema_head"]
    # Nothing about where the database is.
    assert "sqlite:" not in ready.text and "postgresql:" not in ready.text


async def test_readyz_is_a_503_problem_when_the_schema_is_not_current(api: ApiClient) -> None:
    async with api.runtime.engine.begin() as connection:
        await connection.execute(text("UPDATE fa_schema_version SET version_num = '0006'"))
    problem = assert_problem(await api.get("/readyz"), 503)
    assert "0006" in problem["detail"] and SCHEMA_HEAD in problem["detail"]
    assert (await api.get("/healthz")).status_code == 200


async def test_openapi_is_3_1_with_docs_and_bearer_security(api: ApiClient) -> None:
    response = await api.get("/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    paths = document["paths"]
    for path in (
        "/v1/settings",
        "/v1/settings/keys/{key}",
        "/v1/settings/history",
        "/v1/providers/{name}",
        "/v1/models/{provider}/{model}",
        "/v1/servers/{name}",
        "/v1/agents",
        "/v1/agents/graph",
        "/v1/agents/{name}/versions",
        "/v1/agents/{name}/rollback",
        "/v1/agents/import",
        "/v1/agents/export",
    ):
        assert path in paths, sorted(paths)
    # Every $ref resolves (a client generator stops at the first that does not).
    schemas = document["components"]["schemas"]

    def references(node: object) -> list[str]:
        if isinstance(node, dict):
            return [
                found
                for key, value in node.items()
                for found in ([value] if key == "$ref" else references(value))
            ]
        if isinstance(node, list):
            return [found for value in node for found in references(value)]
        return []

    dangling = [ref for ref in references(document) if ref.rpartition("/")[2] not in schemas]
    assert dangling == []
    problem_content = paths["/v1/agents"]["get"]["responses"]["401"]["content"]
    assert "application/problem+json" in problem_content
    docs = await api.get("/docs", headers={"Authorization": ""})
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# ---------------------------------------------------------------------------------------------
# Authentication


#: Authorization headers that must not get in (None: no header at all).
REFUSED_AUTHORIZATIONS = [
    None,
    "",
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer not-a-token",
    "Bearer fadb_000000000000_nosuchsecret",
]


async def test_requests_without_a_valid_token_are_401_problems_and_change_nothing(
    api: ApiClient,
) -> None:
    for authorization in REFUSED_AUTHORIZATIONS:
        headers = {"Authorization": authorization} if authorization is not None else {}
        anonymous = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api.app),
            base_url=str(api.base_url),
            headers=headers,
        )
        async with anonymous:
            read = await anonymous.get("/v1/settings")
            write = await anonymous.put("/v1/settings/keys/logger.level", json={"value": "debug"})
        for response in (read, write):
            problem = assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), authorization
            assert "tokens create" in problem["detail"] or "not valid" in problem["detail"]
    assert await _config_change_count(api) == 0
    assert (await api.get("/v1/settings")).json() == {}


async def test_a_revoked_token_is_refused_and_a_token_of_another_id_does_not_match(
    api: ApiClient,
) -> None:
    tokens = SqlTokenStore(api.runtime)
    created = await tokens.create("short-lived")
    headers = {"Authorization": f"Bearer {created.value}"}
    assert (await api.get("/v1/settings", headers=headers)).status_code == 200

    # The right secret under another token's id is not accepted.
    mine = parse_token_value(api.token)
    assert mine is not None
    theirs = parse_token_value(created.value)
    assert theirs is not None
    swapped = f"fadb_{mine.token_id}_{theirs.secret}"
    assert_problem(
        await api.get("/v1/settings", headers={"Authorization": f"Bearer {swapped}"}), 401
    )

    await tokens.revoke(created.token.token_id)
    response = await api.put(
        "/v1/settings/keys/logger.level", json={"value": "debug"}, headers=headers
    )
    assert_problem(response, 401)
    assert await _config_change_count(api) == 0
    # The token of the fixture still works.
    assert (await api.get("/v1/settings")).status_code == 200


async def test_the_database_keeps_only_hashes_of_token_values(api: ApiClient) -> None:
    created = await SqlTokenStore(api.runtime).create("ci")
    assert (
        await api.get("/v1/settings", headers={"Authorization": f"Bearer {created.value}"})
    ).status_code == 200
    value = parse_token_value(created.value)
    assert value is not None
    async with api.runtime.sessions() as session:
        rows = list(await session.scalars(select(ApiTokenRow)))
        dumped = (await session.execute(text("SELECT * FROM fa_api_tokens"))).all()
    row = next(row for row in rows if row.token_id == value.token_id)
    assert row.hash == hashlib.sha256(value.secret.encode()).hexdigest()
    assert row.last_used_at is not None
    everything = repr(dumped)
    assert value.secret not in everything
    assert created.value not in everything
    api_secret = parse_token_value(api.token)
    assert api_secret is not None and api_secret.secret not in everything


@pytest.mark.parametrize("store_kind", ["sql", "in_memory"])
async def test_token_stores_create_list_revoke_authenticate(
    database_url: str, store_kind: str
) -> None:
    from mcp_agent.db.runtime import DatabaseRuntime

    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlTokenStore(runtime) if store_kind == "sql" else InMemoryTokenStore()
        assert not await store.has_active_tokens()
        first = await store.create("  ci  ")
        second = await store.create("ci")
        designer = await store.create("designer")
        assert first.token.name == "ci"
        assert await store.has_active_tokens()
        assert [t.token_id for t in await store.list()] == [
            first.token.token_id,
            second.token.token_id,
            designer.token.token_id,
        ]
        authenticated = await store.authenticate(designer.value)
        assert authenticated is not None and authenticated.name == "designer"
        assert authenticated.last_used_at is not None
        assert await store.authenticate(designer.value + "x") is None
        assert await store.authenticate("fadb_zz") is None

        with pytest.raises(UnknownValueError, match="2 active tokens are named 'ci'"):
            await store.revoke("ci")
        with pytest.raises(UnknownValueError, match="no active token 'nobody'"):
            await store.revoke("nobody")
        with pytest.raises(InputError, match="name"):
            await store.create("   ")
        with pytest.raises(InputError, match="NUL"):
            await store.create("a\x00b")

        revoked = await store.revoke("designer")
        assert revoked.revoked_at is not None
        assert await store.authenticate(designer.value) is None
        assert [t.name for t in await store.list()] == ["ci", "ci"]
        assert len(await store.list(include_revoked=True)) == 3
        await store.revoke(first.token.token_id)
        await store.revoke("ci")  # the one left with that name
        assert not await store.has_active_tokens()


async def test_tokens_cli_shows_the_value_once_and_never_again(database_url: str) -> None:
    url = ["--database-url", database_url]
    created = await ainvoke("tokens", "create", "ci", *url)
    assert created.exit_code == 0, created.output
    value = created.stdout.strip()
    token = parse_token_value(value)
    assert token is not None

    listed = await ainvoke("tokens", "list", "--json", *url)
    assert listed.exit_code == 0, listed.output
    assert token.token_id in listed.stdout and token.secret not in listed.stdout
    assert '"last_used_at": null' in listed.stdout

    revoked = await ainvoke("tokens", "revoke", token.token_id, *url)
    assert revoked.exit_code == 0, revoked.output
    assert (await ainvoke("tokens", "list", "--json", *url)).stdout.strip() == "[]"
    again = await ainvoke("tokens", "revoke", token.token_id, *url)
    assert again.exit_code == 2 and "no active token" in again.output

    help_text = (await ainvoke("--help")).output
    assert "serve" in help_text and "tokens" in help_text


# ---------------------------------------------------------------------------------------------
# Problems, bounds, pagination


async def test_unknown_routes_and_methods_are_problems(api: ApiClient) -> None:
    assert_problem(await api.get("/v1/nothing-here"), 404)
    assert_problem(await api.post("/v1/agents/graph"), 405)


async def test_bodies_over_the_bound_are_refused_unread(database_url: str) -> None:
    app = create_app(database_url, max_body_bytes=1000)
    async with app.router.lifespan_context(app):
        token = (await SqlTokenStore(app.state.runtime).create("t")).value
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            big = {"default_model": "passthrough", "padding": "x" * 2000}
            announced = await client.put("/v1/settings", json=big)
            assert_problem(announced, 413)

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(5):
                    yield b"x" * 400

            streamed = await client.put(
                "/v1/settings", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert_problem(streamed, 413)
            assert (await client.get("/v1/settings")).json() == {}


async def test_page_sizes_are_bounded_and_cursors_checked(api: ApiClient) -> None:
    assert_problem(await api.get(f"/v1/models?limit={MAX_PAGE_SIZE + 1}"), 422, "limit")
    assert_problem(await api.get("/v1/models?limit=0"), 422, "limit")
    assert_problem(await api.get("/v1/models?cursor=bm90LWpzb24"), 422, "cursor")
    foreign = encode_cursor("agents", ("writer",))
    assert_problem(await api.get(f"/v1/models?cursor={foreign}"), 422, "cursor")
    assert_problem(await api.get("/v1/models?cursor=" + "a" * 2000), 422, "cursor")


def test_keyset_pages_neither_repeat_nor_skip_when_items_change() -> None:
    names = [f"agent-{index:02d}" for index in range(7)]
    first = paginate(names, PageRequest(3, None), list_name="t", key=lambda n: (n,))
    assert first.items == names[:3] and first.next_cursor
    # An item before the cursor appears and one after it goes: the next page starts right after.
    changed = ["agent-00a", *names[:4], *names[5:]]
    second = paginate(changed, PageRequest(3, first.next_cursor), list_name="t", key=lambda n: (n,))
    assert second.items == ["agent-03", "agent-05", "agent-06"]
    assert second.next_cursor is None
    descending = paginate(
        names, PageRequest(4, None), list_name="t", key=lambda n: (n,), descending=True
    )
    rest = paginate(
        names,
        PageRequest(4, descending.next_cursor),
        list_name="t",
        key=lambda n: (n,),
        descending=True,
    )
    assert [*descending.items, *rest.items] == list(reversed(names))
    with pytest.raises(InputError, match="cursor"):
        paginate(names, PageRequest(3, encode_cursor("t", (1,))), list_name="t", key=lambda n: (n,))


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(database_url: str) -> None:
    async with api_client(database_url, raise_app_exceptions=False) as client:

        async def broken() -> None:
            raise RuntimeError("secret internals: /etc/passwd, password=hunter2")

        client.app.add_api_route("/v1/broken", broken)
        response = await client.get("/v1/broken")
        problem = assert_problem(response, 500)
        assert "hunter2" not in response.text and "internals" not in response.text
        assert problem["detail"]


# ---------------------------------------------------------------------------------------------
# serve


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com", "10.0.0.1"):
        assert not is_loopback(host), host


async def test_serve_refuses_a_non_loopback_address_without_a_token(database_url: str) -> None:
    result = await ainvoke("serve", "--host", "0.0.0.0", "--database-url", database_url)
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "tokens create" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_over_http(tmp_path: Path) -> None:
    """The real server: uvicorn on a port, a token from the CLI, a request with it."""
    database_url = f"sqlite:///{tmp_path / 'served.db'}"
    port = _free_port()
    environment = {**os.environ, "FAST_AGENT_DATABASE_URL": database_url}
    command = [sys.executable, "-c", "import fast_agent_db_cli; fast_agent_db_cli.main()"]
    created = subprocess.run(
        [*command, "tokens", "create", "http-test"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=True,
    )
    token = created.stdout.strip()
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--log-level", "warning"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode() if server.stdout else ""
                pytest.fail(f"serve did not answer (exit {server.poll()}):\n{output}")
            time.sleep(0.2)
        assert httpx.get(f"{base}/v1/agents", timeout=10).status_code == 401
        answered = httpx.get(
            f"{base}/v1/agents", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answered.status_code == 200 and answered.json() == {"items": [], "next_cursor": None}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

"""The REST API's OpenAPI schema, fuzzed with schemathesis: whatever a client sends that the
schema allows (and much that it does not), the server never answers with a 5xx, and every
answer matches the schema (its status codes, content types and bodies).

The server is the real app under uvicorn on 127.0.0.1, in a thread of this process, over a
fresh database of each backend; schemathesis talks to it over HTTP with a valid token.
Valid requests and invalid ones are both generated; an invalid one must get a 4xx.
Endpoints that stream until the client leaves (the live event stream) are left out: a fuzzer
waits for a whole response.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from mcp_agent.db.api import create_app
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.tokens.sql import SqlTokenStore
from tests.support.processes import GUARD_S

pytestmark = pytest.mark.slow

#: Examples per operation and mode: enough to reach every validation branch the schema describes.
EXAMPLES_PER_OPERATION = 20

#: Valid requests, then requests the schema forbids (each must be refused with a 4xx).
GENERATION_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _new_token(database_url: str) -> str:
    runtime = await DatabaseRuntime.open(database_url)
    try:
        return (await SqlTokenStore(runtime).create("fuzz")).value
    finally:
        await runtime.close()


class ServedApp:
    """The app under uvicorn in a thread, until `stop()`."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(database_url), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fuzzed API", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApp:
        self.thread.start()
        # Wait on the event (the server answers), under the suite's generous guard.
        with httpx.Client(timeout=GUARD_S) as client:
            for _ in range(int(GUARD_S * 10)):
                if not self.thread.is_alive():
                    raise RuntimeError("the API server stopped while starting")
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                self.thread.join(0.1)
        raise RuntimeError("the API server did not answer within the guard")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(GUARD_S)


@pytest.fixture
def served_api(database_url: str) -> Iterator[tuple[ServedApp, str]]:
    token = asyncio.run(_new_token(database_url))
    served = ServedApp(database_url).start()
    try:
        yield served, token
    finally:
        served.stop()


def _operations(base_url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.base_url = base_url
    schema = schema.exclude(path_regex=r".*/stream$")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_error_and_every_answer_matches_the_schema(
    served_api: tuple[ServedApp, str],
) -> None:
    served, token = served_api
    operations = _operations(served.base_url)
    assert len(operations) > 20, "the schema lists fewer operations than the API has"
    failures: list[str] = []
    for operation, mode in itertools.product(operations, GENERATION_MODES):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=GUARD_S
            )

        try:
            fuzz()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters (/healthz).
            assert mode is GenerationMode.NEGATIVE, f"{operation.path}: no valid request"
        # schemathesis reports its findings as a BaseExceptionGroup.
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - all are reported
            failures.append(
                f"{operation.method.upper()} {operation.path} ({mode.value}):\n{failure}"
            )
    assert not failures, "\n\n".join(failures)

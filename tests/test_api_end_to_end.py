"""`fast-agent-db serve` as a real process, driven over HTTP from start to finish: a token made
with `fast-agent-db tokens create`, settings imported and an agent created through the API, a
run with a tool call through the fake OpenAI server, the same run streamed, the live event
stream open meanwhile, and the execution tree read back. The server's output is shown when
anything fails, and it is stopped on every way out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from tests.support.agent_runs import CALCULATOR, TOOL_CALL_MESSAGE
from tests.support.processes import GUARD_S, run_guarded, wait_guarded

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "fast-agent-db")
#: Per request: generous, a run starts an MCP server process on a loaded machine too.
REQUEST_TIMEOUT = httpx.Timeout(GUARD_S)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"},
        "PYTHONPATH": str(ROOT),
    }


class ServeProcess:
    """`fast-agent-db serve` on a free port, its output in a file to show when a test fails."""

    def __init__(self, database_url: str, log: IO[str]) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self.process = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port), "--database-url", database_url],
            env=_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def wait_until_healthy(self) -> None:
        """Poll /healthz until it answers (the guard only stops a hang)."""
        deadline = time.monotonic() + GUARD_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"serve did not answer /healthz within {GUARD_S:.0f} s\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM (uvicorn's graceful stop), then the guard; SIGKILL if it hangs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return wait_guarded(self.process)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _token(database_url: str) -> str:
    created = run_guarded(
        [CLI, "tokens", "create", "e2e", "--json", "--database-url", database_url],
        env=_environment(),
        text=True,
        expect_code=0,
    )
    return str(json.loads(created.stdout)["value"])


def _sse_events(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


async def test_serve_from_settings_to_execution_tree(
    database_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    token = _token(database_url)
    with (tmp_path / "serve.log").open("w+") as log:
        server = ServeProcess(database_url, log)
        try:
            await asyncio.to_thread(server.wait_until_healthy)
            await _drive(server.base_url, token, fake_openai)
            # A live stream still open when the server stops does not hold it up: it ends.
            async with (
                httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client,
                client.stream(
                    "GET", f"{server.base_url}/v1/events/stream", timeout=REQUEST_TIMEOUT
                ) as stream,
            ):
                assert stream.status_code == 200
                code = await asyncio.to_thread(server.stop)
                await stream.aread()
            # uvicorn re-raises the SIGTERM it handled once it has stopped cleanly.
            assert code in (0, -signal.SIGTERM), server.output()
            assert "Finished server process" in server.output()
        except BaseException:
            await asyncio.to_thread(server.stop)
            print(server.output())  # shown by pytest with the failure
            raise
        finally:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


async def _drive(base_url: str, token: str, fake_openai: FakeOpenAIServer) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"{base_url}/v1", headers=headers, timeout=REQUEST_TIMEOUT
    ) as api:
        assert (await httpx.AsyncClient().get(f"{base_url}/readyz")).status_code == 200
        assert (await api.get("/sessions", headers={"Authorization": ""})).status_code == 401

        # Settings as a whole document (fastagent.config.yaml's shape), then an agent.
        settings = await api.put(
            "/settings",
            json={
                "default_model": "generic.fake-model",
                "generic": {"base_url": fake_openai.base_url},
                "logger": {"progress_display": False, "show_chat": False, "show_tools": False},
                "mcp": {
                    "servers": {
                        "calculator": {"command": sys.executable, "args": [str(CALCULATOR)]}
                    }
                },
            },
        )
        assert settings.status_code == 200, settings.text
        agent = await api.post(
            "/agents", json={"name": "assistant", "type": "agent", "servers": ["calculator"]}
        )
        assert agent.status_code == 201, agent.text
        session = await api.post("/sessions", json={"session_id": "e2e"})
        assert session.status_code == 201, session.text

        # The live event stream, open before the runs: it sees their events as they are stored.
        live = api.stream("GET", "/events/stream", params={"session": "e2e"})
        async with live as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()

            run = await api.post(
                "/sessions/e2e/runs", json={"agent": "assistant", "message": TOOL_CALL_MESSAGE}
            )
            assert run.status_code == 200, run.text
            assert "tool said: 5" in run.json()["reply"]
            execution_id = run.json()["execution"]["execution_id"]

            live_ids = []
            async with asyncio.timeout(GUARD_S):
                async for line in lines:
                    if line.startswith("id: "):
                        live_ids.append(int(line[4:]))
                        break

        streamed = await api.post(
            "/sessions/e2e/runs", json={"agent": "assistant", "message": "again", "stream": True}
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(streamed.text)
        assert events[0]["event"] == "run" and events[-1]["event"] == "reply"
        assert any(event["event"] == "log" for event in events)
        assert events[-1]["data"]["reply"] == "reply to: again (user message 2)"
        assert live_ids and live_ids[0] < int(next(e["id"] for e in events if "id" in e))

        tree = await api.get(f"/executions/{execution_id}")
        assert tree.status_code == 200, tree.text
        root = tree.json()["root"]
        assert root["agent_name"] == "assistant" and root["status"] == "completed"
        assert root["input_tokens"] > 0 and root["session_id"] == "e2e"
        roots = (await api.get("/executions", params={"session": "e2e"})).json()["items"]
        assert [item["execution_id"] for item in roots][-1] == execution_id
        messages = (await api.get("/sessions/e2e/messages")).json()["items"]
        assert [m["sequence"] for m in messages] == [1, 2, 3, 4]
        assert len(fake_openai.requests) == 3  # the tool call's two requests, then one

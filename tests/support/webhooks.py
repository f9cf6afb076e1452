"""Webhook tests' helpers: ended runs as plain fa_runs rows (no run store needed), and a
local receiver (http.server on 127.0.0.1 in a thread) that records what it is sent."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_agent.db.models.runs import RunRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import Run, RunStatus
from mcp_agent.db.runtime import DatabaseRuntime


def ended_run(
    *, agent_name: str = "bot", status: RunStatus = "completed", run_id: str | None = None
) -> Run:
    now = utc_now()
    return Run(
        run_id=run_id or str(uuid.uuid4()),
        agent_name=agent_name,
        session_id=None,
        message="hello",
        model=None,
        status=status,
        attempts=1,
        max_attempts=3,
        caller="test",
        idempotency_key=None,
        not_before=now,
        deadline=None,
        lease_owner=None,
        lease_epoch=1,
        lease_expires_at=None,
        cancel_requested_at=None,
        created_at=now,
        started_at=now,
        finished_at=now,
        result="the reply" if status == "completed" else None,
        error="it broke" if status == "failed" else None,
    )


async def insert_run_row(connection: AsyncConnection, run: Run) -> None:
    """`run` as a plain fa_runs row, on the caller's transaction."""
    await connection.execute(
        insert(RunRow.__table__).values(
            run_id=run.run_id,
            agent_name=run.agent_name,
            session_id=run.session_id,
            message=run.message,
            status=run.status,
            attempts=run.attempts,
            max_attempts=run.max_attempts,
            caller=run.caller,
            not_before=run.not_before,
            lease_epoch=run.lease_epoch,
            created_at=run.created_at,
            updated_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            result=run.result,
            error=run.error,
        )
    )


async def store_run(runtime: DatabaseRuntime | None, run: Run) -> Run:
    """Store `run` in fa_runs (nothing to do in memory, where stores keep no runs)."""
    if runtime is not None:
        async with runtime.engine.begin() as connection:
            await insert_run_row(connection, run)
    return run


class _Server(ThreadingHTTPServer):
    # http.server's listen backlog is 5: concurrent deliveries beyond it had their
    # connections dropped and retried by TCP a second later.
    request_queue_size = 128
    daemon_threads = True


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    #: time.perf_counter() when the request had been read.
    received_at: float = 0.0


@dataclass
class Receiver:
    """Answers `fail_first` requests with 500, then 200, each after `delay_s`; records every
    request."""

    fail_first: int = 0
    delay_s: float = 0.0
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [request for request in self.requests if request.answered == 200]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real receiver: HTTP/1.0 would open a connection per delivery.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received_at = time.perf_counter()
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # a slow receiver (its own thread)
                with receiver._lock:
                    answered = 500 if len(receiver.requests) < receiver.fail_first else 200
                    receiver.requests.append(
                        Received(dict(self.headers), body, answered, received_at)
                    )
                self.send_response(answered)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

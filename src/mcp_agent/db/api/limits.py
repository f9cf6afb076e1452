"""A bound on request bodies, enforced before a route reads one.

A body announced larger than the bound (Content-Length) is answered 413 unread; a body sent
without a length is counted as it arrives and cut off at the bound, so no request can make the
server hold more than the bound in memory.
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_agent.db.api.problems import problem_json

#: 1 MiB: a settings document or a bundle of hundreds of agents fits many times over.
MAX_BODY_BYTES = 1024 * 1024


def _too_large_detail(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes:,} bytes, the most this server reads."


def _too_large(path: str, max_bytes: int) -> JSONResponse:
    return problem_json(413, instance=path, kind="too-large", detail=_too_large_detail(max_bytes))


class RequestBodyLimit:
    """ASGI middleware refusing bodies over `max_bytes` with a 413 problem."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and (not announced.isdigit() or int(announced) > self.max_bytes):
            await _too_large(scope["path"], self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI lets an HTTPException raised while reading a body through as it
                    # is, so the problem handlers answer it as a 413.
                    raise HTTPException(413, _too_large_detail(self.max_bytes))
            return message

        await self.app(scope, bounded_receive, send)

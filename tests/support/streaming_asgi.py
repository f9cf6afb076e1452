"""An httpx transport that runs an ASGI app in-process and streams its response as it is sent.

httpx's own ASGITransport waits for the whole response before returning it: right for most
routes, but an event stream never ends, and a client that leaves early cannot be shown. This
one hands each body chunk over as the app sends it, and closing the response tells the app the
client went away (`http.disconnect`), as a server would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

#: How long a closed response waits for the app to notice the client left before cancelling it.
_DISCONNECT_GRACE_S = 30.0


class _StreamedBody(httpx.AsyncByteStream):
    def __init__(
        self,
        chunks: asyncio.Queue[bytes | None],
        app_task: asyncio.Task[None],
        disconnected: asyncio.Event,
    ) -> None:
        self._chunks = chunks
        self._app_task = app_task
        self._disconnected = disconnected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            getting = asyncio.ensure_future(self._chunks.get())
            await asyncio.wait({getting, self._app_task}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                if self._app_task.exception() is not None:
                    raise self._app_task.exception()  # type: ignore[misc]
                while not self._chunks.empty():  # what it sent before it returned
                    chunk = self._chunks.get_nowait()
                    if chunk is None:
                        return
                    yield chunk
                return
            chunk = getting.result()
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self._disconnected.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._app_task), _DISCONNECT_GRACE_S)
        except TimeoutError:
            self._app_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._app_task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        request_chunks = request.stream.__aiter__()
        request_complete = False
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        started = asyncio.Event()
        disconnected = asyncio.Event()
        response: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            nonlocal request_complete
            if request_complete:
                await disconnected.wait()
                return {"type": "http.disconnect"}
            try:
                body = await request_chunks.__anext__()
            except StopAsyncIteration:
                request_complete = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": body, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message.get("headers", [])
                started.set()
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await chunks.put(None)

        app_task = asyncio.create_task(self.app(scope, receive, send))
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait({waiting, app_task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiting.cancel()
            app_task.result()  # raises what the app raised
            raise RuntimeError("the app returned without starting a response")
        return httpx.Response(
            response["status"],
            headers=response["headers"],
            stream=_StreamedBody(chunks, app_task, disconnected),
        )


def streaming_client(app: Any, token: str) -> httpx.AsyncClient:
    """A client of the in-process `app` whose responses stream, carrying `token`."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app),
        base_url="http://fast-agent-db.test",
        headers={"Authorization": f"Bearer {token}"},
    )

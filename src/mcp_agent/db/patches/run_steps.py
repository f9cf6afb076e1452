"""Journaling a durable run's provider requests and tool calls (see runs/journal.py).

While a worker executes a run (`recording()`, reference-counted), three upstream attributes
are replaced; outside a run scope (`run_context.current_run` is None) each replacement calls
the original at once, so a library run pays one context-variable read:

* `send` of the OpenAI and Anthropic SDKs' `AsyncHttpxClientWrapper` (the httpx client each
  SDK builds when given none, as upstream's providers do): a provider request whose response
  the journal holds gets that response back, byte for byte, without reaching the provider; a
  2xx response is stored once its body has been read to the end (a stream is buffered as it
  streams and stored when it ends; one cut off by a crash is not stored, so it is asked again).
* `MCPAggregator.call_tool` (every tool call of an agent goes through it: the providers' tool
  loops via `AugmentedLLM.call_tool`, the passthrough model's `***CALL_TOOL`, direct calls): a
  stored result is returned without calling the tool; a result is stored when it arrives.

Each is a call boundary: a cancelled run, a passed deadline or a lost lease stops there.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx

from mcp_agent.db.patches.attribute import AttributePatch
from mcp_agent.db.run_context import current_agent, current_run
from mcp_agent.db.runs.scope import RunScope

#: Response headers not stored: they describe the transfer, not the response.
_TRANSFER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_patches: list[AttributePatch] | None = None
_patches_lock = threading.Lock()


def _canonical_request(request: httpx.Request) -> bytes:
    # Method, path and body: the host and the headers (keys, retry counters) may differ
    # between workers and attempts without changing what is asked.
    return b"%s %s\n%s" % (request.method.encode(), request.url.raw_path, request.content)


class _RecordingStream(httpx.AsyncByteStream):
    """A response's body passed through as it arrives, and stored once it has all arrived."""

    def __init__(
        self, inner: httpx.AsyncByteStream, on_end: Callable[[bytes], Awaitable[None]]
    ) -> None:
        self._inner = inner
        self._on_end = on_end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = []
        async for chunk in self._inner:
            chunks.append(chunk)
            yield chunk
        await self._on_end(b"".join(chunks))

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _send_in_run(
    scope: RunScope,
    original: Callable[..., Awaitable[httpx.Response]],
    client: httpx.AsyncClient,
    request: httpx.Request,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> httpx.Response:
    agent = current_agent.get() or ""
    scope.check_boundary(f"a provider request of {agent or 'the run'}")
    await request.aread()
    key = scope.key("llm", agent, _canonical_request(request))
    stored = scope.replay(key)
    if stored is not None:
        return httpx.Response(
            status_code=stored.response["status"],
            headers=[tuple(pair) for pair in stored.response["headers"]],
            content=stored.body or b"",
            request=request,
        )
    response = await original(client, request, *args, **kwargs)
    if not 200 <= response.status_code < 300:
        return response
    status = response.status_code
    headers = [
        [name, value]
        for name, value in response.headers.multi_items()
        if name.lower() not in _TRANSFER_HEADERS
    ]

    async def store(body: bytes) -> None:
        await scope.record(
            scope.step("llm", agent, key, {"status": status, "headers": headers}, body)
        )

    if kwargs.get("stream", False):
        response.stream = _RecordingStream(response.stream, store)  # type: ignore[arg-type]
    else:
        await store(await response.aread())
    return response


def _journaled_send(original: Callable[..., Awaitable[httpx.Response]]) -> Callable[..., Any]:
    async def send(
        self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any
    ) -> httpx.Response:
        scope = current_run.get()
        if scope is None:
            return await original(self, request, *args, **kwargs)
        return await _send_in_run(scope, original, self, request, args, kwargs)

    return send


def _journaled_call_tool(original: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    from mcp.types import CallToolResult

    async def call_tool(self: Any, name: str, arguments: dict[str, Any] | None = None) -> Any:
        scope = current_run.get()
        if scope is None:
            return await original(self, name, arguments)
        agent = getattr(self, "agent_name", None) or current_agent.get() or ""
        # Upstream turns an error raised here into a tool result: the scope keeps the stop and
        # raises it again at the next boundary, so the run stops all the same.
        scope.check_boundary(f"the tool call {name} of {agent}")
        request = json.dumps([name, arguments], sort_keys=True, default=str).encode()
        key = scope.key("tool", agent, request)
        stored = scope.replay(key)
        if stored is not None:
            return CallToolResult.model_validate(stored.response["result"])
        result = await original(self, name, arguments)
        await scope.record(
            scope.step("tool", agent, key, {"name": name, "result": result.model_dump(mode="json")})
        )
        return result

    return call_tool


def _targets() -> list[AttributePatch]:
    from mcp_agent.mcp.mcp_aggregator import MCPAggregator

    patches = [AttributePatch(MCPAggregator, "call_tool", _journaled_call_tool)]
    for sdk in ("openai", "anthropic"):
        with contextlib.suppress(ImportError):  # a provider SDK not installed: nothing to journal
            module = __import__(f"{sdk}._base_client", fromlist=["AsyncHttpxClientWrapper"])
            patches.append(AttributePatch(module.AsyncHttpxClientWrapper, "send", _journaled_send))
    return patches


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Journal provider requests and tool calls made in a run scope while this is held."""
    global _patches
    with _patches_lock:
        if _patches is None:
            _patches = _targets()
        patches = _patches
    acquired: list[AttributePatch] = []
    try:
        for patch in patches:
            patch.acquire()
            acquired.append(patch)
        yield
    finally:
        for patch in reversed(acquired):
            patch.release()

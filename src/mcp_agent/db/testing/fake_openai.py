"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for offline runs.

Upstream's real OpenAI provider code (`generic.<model>` with `generic.base_url` pointing
here) talks to it exactly as to the real API: streamed chunks, tool calls, a final usage chunk.
Every request body is recorded, so tests can compare what a provider was sent.

Replies are decided by the last message, deterministically:
* a tool result -> "tool said: <result>";
* a user message `CALL <tool> <json-arguments>` -> a call of that tool;
* anything else -> "reply to: <text> (user message <n>)", n counting the request's user
  messages, so a reply shows how much history the request carried.

Run it alone: `python -m mcp_agent.db.testing.fake_openai --port 8765`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Called with a request's number (from 1) and body before it is answered, on the request's own
#: thread: it may block, holding that request in flight (a test kills its client meanwhile).
HoldHook = Callable[[int, dict[str, Any]], None]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def decide(request: dict[str, Any]) -> dict[str, Any]:
    """The assistant message to send back: {"content": str} or {"tool_call": (name, args)}."""
    messages = request.get("messages", [])
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return {"content": f"tool said: {_text(last)}"}
    text = _text(last)
    if text.startswith("CALL "):
        _, name, *rest = text.split(" ", 2)
        return {"tool_call": (name, rest[0] if rest else "{}")}
    users = sum(1 for message in messages if message.get("role") == "user")
    return {"content": f"reply to: {text} (user message {users})"}


class FakeOpenAIServer:
    """Serve in a background thread: `with FakeOpenAIServer() as server: server.base_url`."""

    def __init__(
        self, port: int = 0, *, model: str = "fake-model", hold: HoldHook | None = None
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        #: Numbers (from 1) of the requests whose whole response was written.
        self.answered: list[int] = []
        self.model = model
        self.hold = hold
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    call_number = len(server.requests)
                if server.hold is not None:
                    server.hold(call_number, body)
                try:
                    server._respond(self, body, call_number)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client went away (killed) while its request was held
                with server._lock:
                    server.answered.append(call_number)

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], number: int) -> None:
        answer = decide(body)
        completion_id = f"chatcmpl-{number}"
        created = int(time.time())
        prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
        if "tool_call" in answer:
            name, arguments = answer["tool_call"]
            delta: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": f"call_{number}",
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            }
            finish, completion_tokens = "tool_calls", 10
        else:
            delta = {"role": "assistant", "content": answer["content"]}
            finish, completion_tokens = "stop", len(answer["content"]) // 4 + 1

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model", self.model),
                "choices": choices,
            }
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        handler.wfile.write(chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
        handler.wfile.write(chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        handler.wfile.write(chunk([], usage))
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    with FakeOpenAIServer(port) as server:
        print(f"fake OpenAI server at {server.base_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

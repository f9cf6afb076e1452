"""The fake OpenAI server as a process of its own, for a host of tests/support/netns.py: it
listens on the host's own 127.0.0.1 and writes what happened to a log file as it goes, so the
log survives the host being killed.

    python -m tests.support.fake_model_host --port P --log FILE [--hold TEXT --held-file F]

Log lines (JSON): `{"received": N, "body": ...}` when request N arrives, `{"answered": N}`
once its whole response was written, `{"held": N}` for the request held in flight: the first
one whose conversation has a user message TEXT and ends with a tool's result (the request
after the tool call), never answered. One request is held across every host's server: the
server that holds it creates the file F (exclusively), and a server that finds F made holds
nothing (the run's next attempt, on another host, must get its answer). stdout: `ready`
once it listens.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from mcp_agent.db.testing.fake_openai import FakeOpenAIServer


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


class LoggedFakeOpenAIServer(FakeOpenAIServer):
    def __init__(self, port: int, log: Path, hold_text: str | None, held_file: Path | None) -> None:
        self._log = log.open("a", encoding="utf-8")
        self._log_lock = threading.Lock()
        self._hold_text = hold_text
        self._held_file = held_file
        super().__init__(port, hold=self._received)

    def _write(self, record: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()

    def _received(self, number: int, body: dict[str, Any]) -> None:
        self._write({"received": number, "body": body})
        messages = body.get("messages", [])
        holds = (
            self._hold_text is not None
            and self._held_file is not None
            and messages
            and messages[-1].get("role") == "tool"
            and any(m.get("role") == "user" and _text(m) == self._hold_text for m in messages)
        )
        if not holds:
            return
        try:
            self._held_file.touch(exist_ok=False)  # type: ignore[union-attr] - checked above
        except FileExistsError:
            return  # held once already, on this host or another
        self._write({"held": number})
        threading.Event().wait()  # in flight until the host is killed

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], number: int) -> None:
        super()._respond(handler, body, number)
        self._write({"answered": number})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--hold")
    parser.add_argument("--held-file", type=Path)
    arguments = parser.parse_args()
    with LoggedFakeOpenAIServer(arguments.port, arguments.log, arguments.hold, arguments.held_file):
        print("ready", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()

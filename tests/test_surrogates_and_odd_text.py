"""Text that has no UTF-8 form is stored reversibly, and rows stored before that still load.

The attack: `fast-agent-db run pt -m "$(printf 'caf\\xe9')"` hands Python a lone surrogate
(surrogateescape of the byte that is not UTF-8). SQLite stored it as a JSON `\\udce9` escape
that pydantic's JSON parser refuses, so the session could never be loaded again; PostgreSQL
refused the write with a raw DataError. Now every backend stores the exact string.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_agent.core.prompt import Prompt
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart
from mcp_agent.mcp.prompts.prompt_load import load_prompt_multipart
from pydantic import ValidationError
from sqlalchemy import func, select

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.codec import escape_unstorable, unescape_unstorable
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.models import MessageRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import sqlite_file, to_async_url
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

ROOT = Path(__file__).resolve().parents[1]
FROM_THE_COMMAND_LINE = b"caf\xe9".decode("utf-8", "surrogateescape")

ODD_TEXTS: dict[str, str] = {
    "a byte that is not UTF-8, from the command line": FROM_THE_COMMAND_LINE,
    "a lone high surrogate": "before \ud800 after",
    "a lone low surrogate at the end": "end \udfff",
    "surrogates in the wrong order": "\udc00\ud800",
    "a surrogate pair as two code points": "\ud83d\ude00",
    "NUL": "nul:\x00:",
    "the escape character": "\ue000",
    "what an escaped surrogate looks like": "\ue000udce9",
    "what an escaped NUL looks like": "\ue0000",
    "accents and an emoji": "café 😀",
    "all at once": "\x00\ue000\udce9\ue000u0041😀\ud800",
}


def _provider_items(text: str) -> list[dict[str, str]]:
    # Keys are strings too: the provider history is arbitrary JSON.
    return [{"role": "user", "content": text, text: "as a key"}]


async def test_odd_text_round_trips_exactly(runtime: DatabaseRuntime) -> None:
    store = SqlConversationStore(runtime)
    await store.ensure_session("odd")
    for text in ODD_TEXTS.values():
        await store.append(
            "odd",
            "a",
            [NewMessage(content=Prompt.user(text), provider_messages=_provider_items(text))],
        )

    loaded = await store.load("odd", "a")
    assert len(loaded) == len(ODD_TEXTS), "nothing lost"
    for (case, text), message in zip(ODD_TEXTS.items(), loaded, strict=True):
        assert message.content.first_text() == text, case
        assert message.provider_messages == _provider_items(text), case


@pytest.mark.parametrize("text", list(ODD_TEXTS.values()), ids=list(ODD_TEXTS))
def test_escaped_text_is_utf8_and_comes_back(text: str) -> None:
    escaped = escape_unstorable({text: [text]})
    for stored in (*escaped, *next(iter(escaped.values()))):
        stored.encode("utf-8")  # strict: no surrogate survives the escape
        assert "\x00" not in stored
    assert unescape_unstorable(escaped) == {text: [text]}


def _escaped_the_old_way(value: object) -> object:
    """What the codec stored before surrogates were escaped: NUL and its escape only."""
    if isinstance(value, str):
        return value.replace("\ue000", "\ue000\ue000").replace("\x00", "\ue0000")
    if isinstance(value, dict):
        return {_escaped_the_old_way(k): _escaped_the_old_way(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped_the_old_way(entry) for entry in value]
    return value


def _store_rows_the_old_way(path: Path, session: str, texts: list[str]) -> None:
    """Rows as aiosqlite stored them: SQLAlchemy's SQLite JSON column is `json.dumps`."""
    now = "2026-01-01 00:00:00.000000"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO fa_sessions (session_id, updated_at, created_at) VALUES (?, ?, ?)",
            (session, now, now),
        )
        for sequence, text in enumerate(texts, start=1):
            content = Prompt.user(text).model_dump(mode="json", by_alias=True, exclude_none=True)
            connection.execute(
                "INSERT INTO fa_messages (session_id, agent_name, sequence, role, content, "
                "provider, provider_messages, is_prompt, created_at) "
                "VALUES (?, 'a', ?, 'user', ?, 'openai', ?, 0, ?)",
                (
                    session,
                    sequence,
                    json.dumps(_escaped_the_old_way(content)),
                    json.dumps(_escaped_the_old_way(_provider_items(text))),
                    now,
                ),
            )


@pytest.mark.sqlite
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.slow
async def test_a_session_stored_before_the_escape_still_loads(database_url: str, tmp_path) -> None:
    """SQLite only: PostgreSQL refused these rows, so it holds none of them."""
    texts = list(ODD_TEXTS.values())
    path = sqlite_file(to_async_url(database_url))
    assert path is not None
    _store_rows_the_old_way(path, "old", texts)
    _store_rows_the_old_way(path, "typed", [FROM_THE_COMMAND_LINE])
    with sqlite3.connect(path) as connection:
        stored = connection.execute(
            "SELECT content FROM fa_messages WHERE session_id = 'typed'"
        ).fetchone()
    assert "\\udce9" in stored[0]
    with pytest.raises(ValidationError, match="lone leading surrogate"):
        PromptMessageMultipart.model_validate_json(stored[0])  # what failed every later load

    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        loaded = await store.load("old", "a")
        # The old form cannot tell a pair stored as two code points from the character they
        # make (json.dumps writes both as the same escapes): that one comes back combined.
        expected = {**ODD_TEXTS, "a surrogate pair as two code points": "😀"}
        assert [m.content.first_text() for m in loaded] == list(expected.values())
        assert [m.provider_messages for m in loaded] == [
            _provider_items(text) for text in expected.values()
        ]
        await store.append("old", "a", [NewMessage(content=Prompt.user(FROM_THE_COMMAND_LINE))])
        assert len(await store.load("old", "a")) == len(texts) + 1

    url = ["--database-url", database_url]
    shown = _run_process("sessions", "show", "typed", *url, cwd=tmp_path)
    assert shown.returncode == 0
    assert b"caf\xe9" in shown.stdout, "the byte the user typed, written back as it came"
    exported = tmp_path / "old.json"
    result = await ainvoke("sessions", "export", "old", "-o", str(exported), *url)
    assert result.exit_code == 0, result.output
    # Upstream reads consecutive user messages back as one message of several parts.
    assert [part.text for m in load_prompt_multipart(exported) for part in m.content] == [
        *expected.values(),
        FROM_THE_COMMAND_LINE,
    ]


def _run_process(
    *args: str | bytes, cwd: Path, output_errors: str = "surrogateescape"
) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a process of its own. Its output is written the way Python writes it in a
    C or C.UTF-8 locale (surrogateescape), whatever the machine running the tests has set."""
    command = [sys.executable, "-m", "mcp_agent.db.cli", *args]
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONIOENCODING": f"utf-8:{output_errors}",
    }
    environment.pop("FAST_AGENT_DATABASE_URL", None)
    result = run_guarded(
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
    )
    if result.returncode != 0:
        print(result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))
    return result


@pytest.mark.slow
async def test_a_message_that_is_not_utf8_on_the_command_line(database_url: str, tmp_path) -> None:
    (tmp_path / "bundle.yaml").write_text(
        "agents:\n  - {name: pt, type: agent, model: passthrough}\n", encoding="utf-8"
    )
    url = ["--database-url", database_url]
    imported = await ainvoke("agents", "import", str(tmp_path / "bundle.yaml"), *url)
    assert imported.exit_code == 0, imported.output

    first = _run_process("run", "pt", "-m", b"caf\xe9", *url, cwd=tmp_path)
    assert first.returncode == 0
    line = next(
        line for line in first.stderr.decode().splitlines() if line.startswith("fast-agent-db:")
    )
    session = line.split()[2]

    again = _run_process("run", "pt", "-m", "again", "--session", session, *url, cwd=tmp_path)
    assert again.returncode == 0
    assert b"Traceback" not in again.stderr

    async with await DatabaseRuntime.open(database_url) as runtime:
        history = await SqlConversationStore(runtime).load(session, "pt")
        async with runtime.engine.connect() as connection:
            rows = await connection.scalar(select(func.count()).select_from(MessageRow))
    assert rows == 4, "nothing lost"
    assert [m.content.first_text() for m in history] == [
        FROM_THE_COMMAND_LINE,
        FROM_THE_COMMAND_LINE,
        "again",
        "again",
    ]

    shown = _run_process("sessions", "show", session, *url, cwd=tmp_path)
    assert shown.returncode == 0
    assert b"caf\xe9" in shown.stdout
    exported = tmp_path / "history.json"
    result = await ainvoke("sessions", "export", session, "-o", str(exported), *url)
    assert result.exit_code == 0, result.output
    assert [m.first_text() for m in load_prompt_multipart(exported)] == [
        m.content.first_text() for m in history
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "output_errors"),
    [(FROM_THE_COMMAND_LINE, "strict"), ("\ud800", "surrogateescape")],
    ids=["typed byte on a strict terminal", "high surrogate in the C locale"],
)
async def test_showing_it_on_a_terminal_that_cannot_write_it(
    database_url: str, tmp_path: Path, text: str, output_errors: str
) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("s")
        await store.append("s", "a", [NewMessage(content=Prompt.user(text))])
    shown = _run_process(
        "sessions",
        "show",
        "s",
        "--database-url",
        database_url,
        cwd=tmp_path,
        output_errors=output_errors,
    )
    assert shown.returncode == 0
    assert b"Traceback" not in shown.stderr

"""The CLI as users of git, kubectl and psql expect it, through the real `fast-agent-db`
process on both backends: one database for every command, data a program can read (stdout a
pipe), no delete without a yes, ids by prefix, typos named, and admin commands that do not
import upstream's agent stack."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from mcp_agent.core.prompt import Prompt
from sqlalchemy import func, select

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.executions.base import ExecutionStart
from mcp_agent.db.models import EventRow, ExecutionRow, MessageRow, SessionRow
from mcp_agent.db.models.executions import UsageTurnRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.schema_head import SCHEMA_HEAD
from mcp_agent.db.turns.base import CallEnd
from mcp_agent.db.turns.sql import SqlTurnStore
from tests.support.processes import run_guarded

CLI = Path(sys.executable).with_name("fast-agent-db")
#: Longer than any terminal: redirected output must carry it whole.
LONG_TEXT = "a long reply " * 40
#: A session id long enough that a table at 80 columns would have to cut it.
LONG_SESSION = "session-with-a-long-name-" + "x" * 60
EXECUTION_IDS = ("91fa3ab6-aaaa-4000-8000-000000000001", "91fa3ab6-bbbb-4000-8000-000000000002")
OLD = timedelta(days=90)


def cli(
    *arguments: str, cwd: Path, env: dict[str, str] | None = None, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, stdout and stderr pipes (as `> file` makes them)."""
    environment = {**os.environ, "COLUMNS": "80"}
    environment.pop("FAST_AGENT_DATABASE_URL", None)
    environment.update(env or {})
    return run_guarded(
        [str(CLI), *arguments],
        cwd=cwd,
        env=environment,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


#: Each test drives the real `fast-agent-db` process (pipes, a pty, fresh interpreters): the
#: process is the point here, so the module is in the slow part of the suite.
# One backend: the CLI's behaviour, not the store's, on SQLite, the default a new user meets.
pytestmark = [pytest.mark.slow, pytest.mark.one_backend("sqlite")]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


def tool_turn() -> list[dict[str, object]]:
    """An OpenAI-format turn with one tool call and its result, as stored beside a reply."""
    return [
        {"role": "user", "content": "add them"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "calculator-add", "arguments": '{"a": 19, "b": 23}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
    ]


async def seed(database_url: str) -> None:
    """Two sessions (one old and idle), executions with usage, and events."""
    now = utc_now()
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        for session_id in ("demo-session", LONG_SESSION, "stale-session"):
            await store.ensure_session(session_id)
        await store.append(
            "demo-session",
            "assistant",
            [
                NewMessage(Prompt.user("add them")),
                NewMessage(
                    Prompt.assistant("It is 42. " + LONG_TEXT),
                    provider_messages=tool_turn(),
                    provider="openai",
                    model="gpt-test",
                ),
            ],
        )
        await store.append(LONG_SESSION, "assistant", [NewMessage(Prompt.user("hi"))])
        await store.append("stale-session", "assistant", [NewMessage(Prompt.user("old"))])
        calls = SqlTurnStore(runtime)
        for execution_id, started in zip(EXECUTION_IDS, (now - OLD, now), strict=True):
            await calls.start_call(
                ExecutionStart(
                    execution_id=execution_id,
                    parent_execution_id=None,
                    agent_name="assistant",
                    agent_version_id=None,
                    operation="generate",
                    started_at=started,
                    worker_id="w",
                    session_id="demo-session",
                )
            )
            await calls.end_call(CallEnd(execution_id, status="completed", finished_at=started))
        async with runtime.sessions.begin() as session:
            session.add(
                UsageTurnRow(
                    execution_id=EXECUTION_IDS[1],
                    provider="openai",
                    model="gpt-test",
                    input_tokens=120,
                    output_tokens=30,
                    cost=Decimal("0.000450"),
                )
            )
            stale = await session.get(SessionRow, "stale-session")
            assert stale is not None
            stale.updated_at = now - OLD
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions(now - OLD, months_ahead=4)
        await sink.write(
            [
                EventRecord(
                    occurred_at=now - OLD,
                    level="info",
                    namespace="tests",
                    message="an old event",
                    session_id="demo-session",
                    agent_name="assistant",
                ),
                EventRecord(
                    occurred_at=now,
                    level="warning",
                    namespace="tests",
                    message="a warning " + LONG_TEXT,
                    session_id="demo-session",
                    agent_name="assistant",
                ),
            ]
        )


async def counts(database_url: str) -> dict[str, int]:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            return {
                row.__tablename__: int(
                    await session.scalar(select(func.count()).select_from(row)) or 0
                )
                for row in (EventRow, ExecutionRow, SessionRow, MessageRow)
            }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where the user runs the commands: nothing else is in it (the SQLite file is not)."""
    directory = tmp_path / "workdir"
    directory.mkdir()
    return directory


@pytest.fixture
async def seeded(database_url: str) -> str:
    await seed(database_url)
    return database_url


async def test_the_database_url_before_the_command_applies_to_every_command(
    seeded: str, workdir: Path
) -> None:
    # The documented precedence: the command's own option, the root's, the variable, ./.
    elsewhere = {"FAST_AGENT_DATABASE_URL": f"sqlite:///{workdir / 'nowhere.db'}"}
    listed = json.loads(
        ok(cli("--database-url", seeded, "sessions", "list", "--json", cwd=workdir, env=elsewhere))
    )
    assert {"demo-session", LONG_SESSION} <= {entry["session_id"] for entry in listed}
    assert ok(cli("--database-url", seeded, "db", "current", cwd=workdir)).startswith(SCHEMA_HEAD)
    own = cli(
        "--database-url",
        seeded,
        "db",
        "current",
        "--database-url",
        f"sqlite:///{workdir / 'missing.db'}",
        cwd=workdir,
    )
    assert own.returncode != 0 and "missing.db" in own.stderr  # the command's own wins
    # The global --session is the filter of logs too.
    logged = ok(cli("--database-url", seeded, "--session", "demo", "logs", "--json", cwd=workdir))
    assert {json.loads(line)["session_id"] for line in logged.splitlines()} == {"demo-session"}
    # Nothing was created where the user stands.
    assert sorted(path.name for path in workdir.iterdir()) == []


async def test_redirected_output_is_data_never_wrapped_or_styled(
    seeded: str, workdir: Path
) -> None:
    url = ["--database-url", seeded]
    exported = ok(cli("sessions", "export", "demo-session", *url, cwd=workdir))
    messages = json.loads(exported)["messages"]
    assert LONG_TEXT in json.dumps(messages)
    ok(cli("servers", "add", "long", "--command", "x" * 150, *url, cwd=workdir))
    shown = yaml.safe_load(ok(cli("config", "show", *url, cwd=workdir)))
    assert shown["mcp"]["servers"]["long"]["command"] == "x" * 150
    table = ok(cli("sessions", "list", *url, cwd=workdir))
    assert LONG_SESSION in table and "\x1b[" not in table  # whole, and no colour codes
    events = ok(cli("logs", *url, cwd=workdir))
    assert ("a warning " + LONG_TEXT).strip() in events


async def test_every_list_and_show_command_has_json_matching_the_database(
    seeded: str, workdir: Path
) -> None:
    url = ["--database-url", seeded]

    def data(*arguments: str) -> object:
        return json.loads(ok(cli(*arguments, "--json", *url, cwd=workdir)))

    sessions = {entry["session_id"]: entry for entry in data("sessions", "list")}
    assert sessions["demo-session"]["message_counts"] == {"assistant": 2}
    transcript = data("sessions", "show", "demo-session")
    reply = transcript["agents"]["assistant"][1]
    assert reply["role"] == "assistant" and reply["model"] == "gpt-test"
    assert reply["tool_activity"][0] == {
        "kind": "call",
        "tool_name": "calculator-add",
        "call_id": "call_7",
        "text": '{"a": 19, "b": 23}',
        "is_error": False,
    }
    assert reply["tool_activity"][1]["kind"] == "result"
    assert reply["tool_activity"][1]["text"] == "42"
    executions = data("executions", "list")
    assert {entry["execution_id"] for entry in executions} == set(EXECUTION_IDS)
    tree = data("executions", "show", EXECUTION_IDS[1])
    assert tree["executions"][0]["status"] == "completed"
    usage = data("usage", "--by", "model")
    assert usage == [
        {
            "model": "gpt-test",
            "calls": 1,
            "input_tokens": 120,
            "output_tokens": 30,
            "cache_read_tokens": 0,
            "reasoning_tokens": 0,
            "cost": "0.00045",
        }
    ]
    status = data("db", "status")
    assert status["revision"] == status["head"] and status["tables"]["fa_sessions"] == 3
    models = data("models", "list")
    assert all({"provider", "model", "input_price_per_mtok"} <= set(entry) for entry in models)
    assert isinstance(data("agents", "list"), list)
    assert isinstance(data("servers", "list"), list)
    logged = ok(cli("logs", "--json", *url, cwd=workdir)).splitlines()
    assert [json.loads(line)["message"][:9] for line in logged] == ["an old ev", "a warning"]


async def test_prune_and_sessions_delete_count_ask_and_take_yes(seeded: str, workdir: Path) -> None:
    url = ["--database-url", seeded]
    before = await counts(seeded)
    # `m` is ambiguous (minutes? months?): refused, nothing removed.
    refused(cli("prune", "--older-than", "1m", "--yes", *url, cwd=workdir), "ambiguous")
    dry = ok(cli("prune", "--older-than", "30d", "--sessions", "--dry-run", *url, cwd=workdir))
    assert "Dry run" in dry and "events" in dry
    # No terminal to ask on and no --yes: refused, nothing removed.
    refused(cli("prune", "--older-than", "30d", "--sessions", *url, cwd=workdir), "--yes")
    refused(cli("sessions", "delete", "demo-session", *url, cwd=workdir), "--yes")
    assert await counts(seeded) == before
    # On a terminal: asked; "n" keeps everything, "y" goes ahead.
    assert _on_a_terminal(["prune", "--older-than", "30d", "--sessions", *url], "n\n", workdir) == 1
    assert await counts(seeded) == before
    assert _on_a_terminal(["prune", "--older-than", "30d", "--sessions", *url], "y\n", workdir) == 0
    after = await counts(seeded)
    assert after["fa_events"] == before["fa_events"] - 1
    assert after["fa_executions"] == before["fa_executions"] - 1
    assert after["fa_sessions"] == before["fa_sessions"] - 1
    deleted = ok(cli("sessions", "delete", "demo-session", "--yes", *url, cwd=workdir))
    assert "Deleted session demo-session (2 messages)" in deleted
    assert (await counts(seeded))["fa_sessions"] == after["fa_sessions"] - 1


def _on_a_terminal(arguments: list[str], answer: str, cwd: Path) -> int:
    """Run with stdin a terminal (a pty), answering the question; the exit code."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        result = cli(*arguments, cwd=cwd, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert "?" in result.stdout, f"not asked:\n{result.stdout}\n{result.stderr}"
    return result.returncode


async def test_ids_by_unique_prefix_and_typos_named(seeded: str, workdir: Path) -> None:
    url = ["--database-url", seeded]
    shown = ok(cli("executions", "show", "91fa3ab6-b", *url, cwd=workdir))
    assert "assistant generate" in shown
    refused(
        cli("executions", "show", "91fa3ab6", *url, cwd=workdir),
        "ambiguous",
        EXECUTION_IDS[0],
        EXECUTION_IDS[1],
    )
    assert "It is 42." in ok(cli("sessions", "show", "demo-s", *url, cwd=workdir))
    refused(cli("sessions", "show", "dem", *url, cwd=workdir), "at least 4 characters")
    refused(cli("logs", "--session", "nosuch", *url, cwd=workdir), "no session 'nosuch'")
    refused(cli("logs", "--agent", "nosuch", *url, cwd=workdir), "--agent 'nosuch'", "assistant")
    refused(
        cli("sessions", "show", "demo-session", "--agent", "nosuch", *url, cwd=workdir),
        "its agents: assistant",
    )
    refused(cli("usage", "--agent", "nosuch", *url, cwd=workdir), "--agent 'nosuch'")


async def test_the_transcript_shows_the_tool_calls(seeded: str, workdir: Path) -> None:
    shown = ok(cli("sessions", "show", "demo-session", "--database-url", seeded, cwd=workdir))
    assert 'calls calculator-add {"a": 19, "b": 23}' in shown
    assert "calculator-add returned: 42" in shown


@pytest.mark.sqlite
def test_help_says_what_options_are(workdir: Path) -> None:
    set_help = ok(cli("config", "set", "--help", cwd=workdir))
    assert "(true, 3, [a, b])" in set_help
    assert "<bool>" not in ok(cli("--help", cwd=workdir))
    assert "--output-price" in ok(cli("models", "set-price", "--help", cwd=workdir))
    assert ok(cli("--version", cwd=workdir)).startswith("fast-agent-db ")


async def test_config_history_names_keys_as_users_type_them(
    database_url: str, workdir: Path
) -> None:
    url = ["--database-url", database_url]
    ok(cli("config", "set", "openai.api_key", "env:OPENAI_KEY", *url, cwd=workdir))
    ok(
        cli(
            "models",
            "set-price",
            "openai/gpt-x",
            "--output-price",
            "8",
            "--input",
            "2",
            *url,
            cwd=workdir,
        )
    )
    history = json.loads(ok(cli("config", "history", "--json", *url, cwd=workdir)))
    assert "_ref" not in json.dumps(history)
    ok(cli("config", "set", "openai.api_key", "env:OTHER_KEY", *url, cwd=workdir))
    history = json.loads(ok(cli("config", "history", "--json", *url, cwd=workdir)))
    assert history[0]["key"] == "openai.api_key"
    assert (history[0]["old_value"], history[0]["new_value"]) == ("env:OPENAI_KEY", "env:OTHER_KEY")
    listed = json.loads(
        ok(cli("models", "list", "--provider", "openai", "--json", *url, cwd=workdir))
    )
    price = next(entry for entry in listed if entry["model"] == "gpt-x")
    assert (price["input_price_per_mtok"], price["output_price_per_mtok"]) == ("2", "8")


@pytest.mark.sqlite
def test_admin_commands_do_not_import_upstreams_agent_stack(workdir: Path) -> None:
    """`sessions list`, `logs`, `db status`: upstream's `mcp_agent/__init__` (every provider
    SDK, the MCP client, the workflows) is not imported; `go` and `run` still get it."""
    probe = (
        "import sys, atexit, fast_agent_db_cli\n"
        "atexit.register(lambda: print('UPSTREAM' if 'mcp_agent.core.fastagent' in sys.modules"
        " else 'LIGHT', file=sys.stderr))\n"
        "sys.argv = ['fast-agent-db', *sys.argv[1:]]\n"
        "fast_agent_db_cli.main()\n"
    )
    url = f"sqlite:///{workdir / 'probe.db'}"
    for arguments in (
        ["db", "upgrade"],
        ["sessions", "list"],
        ["logs", "-n", "10"],
        ["db", "status"],
    ):
        result = run_guarded(
            [sys.executable, "-c", probe, "--database-url", url, *arguments],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().endswith("LIGHT"), (arguments, result.stderr)

"""`fast-agent-db sessions ...`: conversations stored in the database.

Every SESSION_ID may be given as a unique prefix of at least four characters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
    write_data,
)
from mcp_agent.db.cli.options import DatabaseUrlOption, agent_name_text, session_id_text
from mcp_agent.db.cli.output import confirm_or_stop, console, error_console, run_async
from mcp_agent.db.conversations.base import SessionSummary, StoredMessage
from mcp_agent.db.conversations.sql import SessionError, SqlConversationStore
from mcp_agent.db.conversations.transcript import ToolActivity, tool_activity
from mcp_agent.db.limits import INTEGER_MAX, SEQUENCE_RANGE
from mcp_agent.db.lookups import complete_session_id
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(
    help="Sessions: list, show, fork, delete, export. A SESSION_ID may be a unique prefix "
    "(at least 4 characters).",
    no_args_is_help=True,
)

_T = TypeVar("_T")

AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent", help="The agent (needed when several share the session).", parser=agent_name_text
    ),
]


def _session_argument(help_text: str) -> typer.models.ArgumentInfo:
    return typer.Argument(help=help_text, metavar="SESSION_ID", parser=session_id_text)


def _on_session(
    database_url: str | None,
    typed_id: str,
    work: Callable[[SqlConversationStore, str], Awaitable[_T]],
) -> _T:
    """Run `work` on the session `typed_id` names (whole or by prefix) in a database that
    exists: a mistyped path creates no database."""

    async def run() -> _T:
        raw_url = resolve_database_url(database_url)
        async with await DatabaseRuntime.open_existing(raw_url) as runtime:
            session_id = await complete_session_id(runtime, typed_id)
            return await work(SqlConversationStore(runtime), session_id)

    return run_async(run())


@app.command("list")
def list_(
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=INTEGER_MAX)
    ] = 50,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List sessions, newest activity first."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> list[SessionSummary]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            return await SqlConversationStore(runtime).list_sessions(limit=limit)

    print_rows(
        run_async(work()),
        [
            Column("session", lambda summary: summary.session_id, typed=True),
            Column("updated (UTC)", lambda summary: f"{summary.updated_at:%Y-%m-%d %H:%M:%S}"),
            Column(
                "messages by agent",
                lambda summary: ", ".join(
                    f"{agent}: {count}" for agent, count in sorted(summary.message_counts.items())
                ),
            ),
            Column("branched from", lambda summary: summary.parent_session_id or "", typed=True),
        ],
        title="sessions",
        output_format=chosen,
        wide=wide,
    )


def message_document(message: StoredMessage) -> dict[str, Any]:
    """A stored message as `sessions show --json` prints it (docs/cli-output.md)."""
    return {
        "message_id": message.message_id,
        "sequence": message.sequence,
        "role": message.content.role,
        "text": message.content.all_text(),
        "model": message.model,
        "provider": message.provider,
        "created_at": message.created_at,
        "tool_activity": tool_activity(message.provider_messages),
        "content": message.content,
    }


def _activity_line(entry: ToolActivity) -> str:
    name = entry.tool_name or "tool"
    if entry.kind == "call":
        return f"       → calls {name} {entry.text}"
    marker = " (error)" if entry.is_error else ""
    return f"       ← {name} returned{marker}: {entry.text}"


@app.command()
def show(
    session_id: Annotated[str, _session_argument("The session (or a unique prefix).")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent.", parser=agent_name_text)
    ] = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print a session's transcript agent by agent, with the tool calls each turn made."""
    chosen = chosen_format(json_flag, output_format)

    async def work(
        store: SqlConversationStore, full_id: str
    ) -> tuple[str, dict[str, list[StoredMessage]]]:
        agents = await store.agents(full_id)
        if agent is not None and agent not in agents:
            raise SessionError(
                f"--agent {agent!r}: session {full_id!r} has no messages of it "
                f"(its agents: {', '.join(agents) or 'none'})"
            )
        names = [agent] if agent is not None else agents
        return full_id, {name: await store.load(full_id, name) for name in names}

    full_id, histories = _on_session(database_url, session_id, work)
    if chosen is not OutputFormat.TABLE:
        print_document(
            {
                "session_id": full_id,
                "agents": {
                    name: [message_document(message) for message in history]
                    for name, history in histories.items()
                },
            },
            chosen,
        )
        return
    for name, history in histories.items():
        console.heading(f"{name} ({len(history)} messages)")
        for message in history:
            console.print(
                f"[bold]{message.sequence:>4} {message.content.role}[/]"
                + (f" [dim]({message.model})[/]" if message.model else "")
            )
            # The turn's tool calls came before its final text.
            for entry in tool_activity(message.provider_messages):
                console.print(_activity_line(entry), markup=False, highlight=False, style="dim")
            console.print(message.content.all_text() or "[dim](no text)[/]", markup=False)


@app.command()
def fork(
    session_id: Annotated[str, _session_argument("The session to branch from (or a prefix).")],
    at: Annotated[
        int,
        typer.Option(
            "--at",
            help="The last message (sequence) to share.",
            min=SEQUENCE_RANGE[0],
            max=SEQUENCE_RANGE[1],
        ),
    ],
    agent: AgentOption = None,
    new_id: Annotated[
        str | None,
        typer.Option("--new-id", help="Id for the new session.", parser=session_id_text),
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Start a new session sharing this one's history up to message --at (no rows copied)."""
    child = _on_session(
        database_url,
        session_id,
        lambda store, full_id: store.fork(
            full_id, at_sequence=at, agent_name=agent, new_session_id=new_id
        ),
    )
    console.print(child, markup=False, highlight=False)


@app.command()
def delete(
    session_id: Annotated[str, _session_argument("The session (or a unique prefix).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be deleted.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete a session and its messages (refused while branches share its history).

    Says first what it deletes, and asks; without a terminal to ask on, it needs --yes.
    """

    async def check(store: SqlConversationStore, full_id: str) -> SessionSummary:
        await store.delete(full_id, apply=False)  # refused now if branches depend on it
        return await store.summary(full_id)

    summary = _on_session(database_url, session_id, check)
    counts = ", ".join(f"{agent}: {n}" for agent, n in sorted(summary.message_counts.items()))
    total = sum(summary.message_counts.values())
    console.print(
        f"Session {summary.session_id}: {total} messages" + (f" ({counts})" if counts else ""),
        markup=False,
        highlight=False,
    )
    if dry_run:
        console.print("Dry run: nothing was deleted.")
        return
    confirm_or_stop(
        f"Delete session {summary.session_id} and its {total} messages?",
        yes=yes,
        what=f"Deleting session {summary.session_id} removes {total} messages",
    )
    removed = _on_session(
        database_url, summary.session_id, lambda store, full_id: store.delete(full_id)
    )
    console.print(f"Deleted session {summary.session_id} ({removed} messages).", markup=False)


@app.command()
def export(
    session_id: Annotated[str, _session_argument("The session (or a unique prefix).")],
    agent: AgentOption = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export an agent's history as upstream's history JSON (load it with load_prompt_multipart)."""
    from mcp_agent.mcp.prompt_serialization import multipart_messages_to_json

    async def work(store: SqlConversationStore, full_id: str) -> tuple[str, list[StoredMessage]]:
        name = await store.resolve_agent(full_id, agent)
        return name, await store.load(full_id, name)

    name, history = _on_session(database_url, session_id, work)
    text = multipart_messages_to_json([message.content for message in history])
    if output is None:
        write_data(text)
    else:
        output.write_text(text, encoding="utf-8")
        error_console.print(f"Wrote {len(history)} messages of {name} to {output}", markup=False)

"""`fast-agent-db sessions ...`: conversations stored in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mcp_agent.mcp.prompt_serialization import multipart_messages_to_json
from rich.table import Table

from mcp_agent.db.cli.options import (
    DatabaseUrlOption,
    agent_name_text,
    session_id_text,
)
from mcp_agent.db.cli.output import console, error_console, run_async
from mcp_agent.db.conversations.base import StoredMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.limits import INTEGER_MAX, SEQUENCE_RANGE
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="Sessions: list, show, fork, delete, export.", no_args_is_help=True)

AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent", help="The agent (needed when several share the session).", parser=agent_name_text
    ),
]


def _session_argument(help_text: str) -> typer.models.ArgumentInfo:
    return typer.Argument(help=help_text, metavar="SESSION_ID", parser=session_id_text)


async def _with_store(database_url: str | None, work):  # noqa: ANN001, ANN202 - small adapter
    # Every command here works on sessions that exist: a mistyped path creates no database.
    async with await DatabaseRuntime.open_existing(resolve_database_url(database_url)) as runtime:
        return await work(SqlConversationStore(runtime))


async def _agent_history(
    store: SqlConversationStore, session_id: str, agent: str | None
) -> tuple[str, list[StoredMessage]]:
    name = await store.resolve_agent(session_id, agent)
    return name, await store.load(session_id, name)


@app.command("list")
def list_(
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=INTEGER_MAX)
    ] = 50,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List sessions, newest activity first."""
    summaries = run_async(_with_store(database_url, lambda store: store.list_sessions(limit=limit)))
    table = Table(title="sessions")
    for column in ("session", "updated (UTC)", "messages by agent", "branched from"):
        table.add_column(column)
    for summary in summaries:
        table.add_row(
            summary.session_id,
            f"{summary.updated_at:%Y-%m-%d %H:%M:%S}",
            ", ".join(
                f"{agent}: {count}" for agent, count in sorted(summary.message_counts.items())
            ),
            summary.parent_session_id or "",
        )
    console.print(table)


@app.command()
def show(
    session_id: Annotated[str, _session_argument("The session.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent.", parser=agent_name_text)
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print a session's transcript, agent by agent."""

    async def work(store: SqlConversationStore) -> dict[str, list[StoredMessage]]:
        agents = [agent] if agent else await store.agents(session_id)
        return {name: await store.load(session_id, name) for name in agents}

    for name, history in run_async(_with_store(database_url, work)).items():
        console.rule(f"{name} ({len(history)} messages)")
        for message in history:
            console.print(
                f"[bold]{message.sequence:>4} {message.content.role}[/]"
                + (f" [dim]({message.model})[/]" if message.model else "")
            )
            console.print(message.content.all_text() or "[dim](no text)[/]", markup=False)


@app.command()
def fork(
    session_id: Annotated[str, _session_argument("The session to branch from.")],
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
    child = run_async(
        _with_store(
            database_url,
            lambda store: store.fork(
                session_id, at_sequence=at, agent_name=agent, new_session_id=new_id
            ),
        )
    )
    console.print(child, markup=False, highlight=False)


@app.command()
def delete(
    session_id: Annotated[str, _session_argument("The session.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete a session and its messages (refused while branches share its history)."""
    removed = run_async(_with_store(database_url, lambda store: store.delete(session_id)))
    console.print(f"Deleted session {session_id} ({removed} messages).")


@app.command()
def export(
    session_id: Annotated[str, _session_argument("The session.")],
    agent: AgentOption = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export an agent's history as upstream's history JSON (load it with load_prompt_multipart)."""
    name, history = run_async(
        _with_store(database_url, lambda store: _agent_history(store, session_id, agent))
    )
    text = multipart_messages_to_json([message.content for message in history])
    if output is None:
        console.print(text, markup=False, highlight=False)
    else:
        output.write_text(text, encoding="utf-8")
        error_console.print(f"Wrote {len(history)} messages of {name} to {output}")

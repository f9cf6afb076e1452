"""`fast-agent-db sessions ...` over a session written through the store."""

from __future__ import annotations

from mcp.types import ImageContent, TextContent
from mcp_agent.core.prompt import Prompt
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart
from mcp_agent.mcp.prompts.prompt_load import load_prompt_multipart

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke

CONVERSATION = [
    Prompt.user("What is in this picture? ✓"),
    PromptMessageMultipart(
        role="assistant",
        content=[
            TextContent(type="text", text="A cat."),
            ImageContent(type="image", data="aGVsbG8=", mimeType="image/png"),
        ],
    ),
    Prompt.user("Thanks"),
    Prompt.assistant("You're welcome."),
]


async def _seed(database_url: str) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session("demo")
        await store.append("demo", "assistant", [NewMessage(m) for m in CONVERSATION])
        await store.append("demo", "helper", [NewMessage(Prompt.user("side note"))])


async def test_list_show_export_fork_delete(database_url: str, tmp_path) -> None:
    await _seed(database_url)
    url = ["--database-url", database_url]

    listed = await ainvoke("sessions", "list", *url)
    assert "demo" in listed.output and "assistant: 4" in listed.output

    shown = await ainvoke("sessions", "show", "demo", "--agent", "assistant", *url)
    assert "What is in this picture? ✓" in shown.output and "You're welcome." in shown.output

    ambiguous = await ainvoke("sessions", "export", "demo", *url)
    assert ambiguous.exit_code == 2 and "name one with --agent" in ambiguous.output
    exported = tmp_path / "history.json"
    result = await ainvoke(
        "sessions", "export", "demo", "--agent", "assistant", "-o", str(exported), *url
    )
    assert result.exit_code == 0, result.output
    assert load_prompt_multipart(exported) == CONVERSATION  # upstream reads it back

    forked = await ainvoke(
        "sessions", "fork", "demo", "--at", "2", "--agent", "assistant", "--new-id", "demo-b", *url
    )
    assert forked.stdout.strip() == "demo-b"
    branch = await ainvoke("sessions", "show", "demo-b", "--agent", "assistant", *url)
    assert "A cat." in branch.output and "Thanks" not in branch.output

    refused = await ainvoke("sessions", "delete", "demo", *url)
    assert refused.exit_code == 2 and "branches share its history: demo-b" in refused.output
    assert (await ainvoke("sessions", "delete", "demo-b", "--yes", *url)).exit_code == 0
    deleted = await ainvoke("sessions", "delete", "demo", "--yes", *url)
    assert "Deleted session demo (5 messages)" in deleted.output
    missing = await ainvoke("sessions", "show", "demo", *url)
    assert missing.exit_code == 2 and "no session 'demo'" in missing.output

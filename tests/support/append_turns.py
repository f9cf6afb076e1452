"""Append N one-message turns to a session from this process (concurrency tests).

usage: python -m tests.support.append_turns DATABASE_URL SESSION AGENT WRITER N
"""

import asyncio
import sys

from mcp_agent.core.prompt import Prompt

from mcp_agent.db.conversations.base import NewMessage
from mcp_agent.db.conversations.sql import SqlConversationStore
from mcp_agent.db.runtime import DatabaseRuntime


async def main(url: str, session_id: str, agent: str, writer: str, count: int) -> None:
    async with await DatabaseRuntime.open(url) as runtime:
        store = SqlConversationStore(runtime)
        await store.ensure_session(session_id)
        for number in range(count):
            await store.append(
                session_id, agent, [NewMessage(content=Prompt.user(f"{writer}-{number}"))]
            )


if __name__ == "__main__":
    url, session_id, agent, writer, count = sys.argv[1:]
    asyncio.run(main(url, session_id, agent, writer, int(count)))

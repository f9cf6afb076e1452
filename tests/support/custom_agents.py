"""A custom agent class for tests: upstream's Agent, replying in capitals."""

from __future__ import annotations

from mcp_agent.agents.agent import Agent
from mcp_agent.core.request_params import RequestParams
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart


class ShoutingAgent(Agent):
    async def generate(
        self,
        multipart_messages: list[PromptMessageMultipart],
        request_params: RequestParams | None = None,
    ) -> PromptMessageMultipart:
        reply = await super().generate(multipart_messages, request_params)
        return PromptMessageMultipart(
            role="assistant",
            content=[{"type": "text", "text": reply.all_text().upper()}],
        )

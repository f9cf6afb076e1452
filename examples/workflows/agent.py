"""One agent with an MCP tool. Offline, passthrough calls the tool on request."""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-agent")


@fast.agent(
    name="assistant", instruction="Answer briefly; use the calculator.", servers=["calculator"]
)
async def main() -> None:
    async with fast.run() as app:
        print(await app.assistant.send('***CALL_TOOL calculator-add {"a": 40, "b": 2}'))
        print(await app.assistant.send("What is the answer to everything?"))


if __name__ == "__main__":
    asyncio.run(main())

"""A chain: each agent's output is the next agent's input."""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-chain")


@fast.agent(name="drafter", instruction="Draft a short answer.")
@fast.agent(name="editor", instruction="Tighten the draft.")
@fast.chain(name="write", sequence=["drafter", "editor"])
async def main() -> None:
    async with fast.run() as app:
        print(await app.write.send("Why keep agent history in a database?"))


if __name__ == "__main__":
    asyncio.run(main())

"""An orchestrator: an LLM plans steps and hands them to agents.

Offline, passthrough cannot produce a plan, so upstream's orchestrator reports that; with a
real model it plans and delegates.
"""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-orchestrator")


@fast.agent(name="researcher", instruction="Collect facts.", servers=["calculator"])
@fast.agent(name="writer", instruction="Write up findings.")
@fast.orchestrator(name="lead", agents=["researcher", "writer"], plan_iterations=2)
async def main() -> None:
    async with fast.run() as app:
        print(await app.lead.send("Work out 19 + 23 and write one sentence about it."))


if __name__ == "__main__":
    asyncio.run(main())

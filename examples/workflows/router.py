"""A router: an LLM picks the agent for each request.

Offline, the passthrough router returns the JSON of a `***FIXED_RESPONSE` message, which names
the agent; with a real model, ask a real question instead.
"""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-router")

OFFLINE_ROUTE = '***FIXED_RESPONSE {"agent": "maths", "confidence": "high", "reasoning": "sums"}'


@fast.agent(name="maths", instruction="Answer arithmetic questions.", servers=["calculator"])
@fast.agent(name="prose", instruction="Answer questions about writing.")
@fast.router(name="desk", agents=["maths", "prose"])
async def main() -> None:
    async with fast.run() as app:
        print(await app.desk.send(OFFLINE_ROUTE))


if __name__ == "__main__":
    asyncio.run(main())

"""A parallel workflow: the same request to several agents, then a fan-in agent."""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-parallel")


@fast.agent(name="optimist", instruction="List the benefits.")
@fast.agent(name="skeptic", instruction="List the risks.")
@fast.agent(name="summariser", instruction="Weigh both sides in one paragraph.")
@fast.parallel(name="review", fan_out=["optimist", "skeptic"], fan_in="summariser")
async def main() -> None:
    async with fast.run() as app:
        print(await app.review.send("Moving our agents' state into PostgreSQL."))


if __name__ == "__main__":
    asyncio.run(main())

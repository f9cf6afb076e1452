"""An evaluator-optimizer: a generator refines its answer until an evaluator is satisfied."""

import asyncio

from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-evaluator-optimizer")


@fast.agent(name="author", instruction="Write a one-line slogan.")
@fast.agent(name="critic", instruction="Rate the slogan and say how to improve it.")
@fast.evaluator_optimizer(name="polish", generator="author", evaluator="critic", max_refinements=1)
async def main() -> None:
    async with fast.run() as app:
        print(await app.polish.send("A slogan for a database-backed agent framework."))


if __name__ == "__main__":
    asyncio.run(main())

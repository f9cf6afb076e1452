"""A custom agent: your own subclass of upstream's Agent, built by upstream's factory.

In the database a custom agent is stored by its dotted class path, so the class must be
importable where the agent runs (here: `python -m` from the examples directory is not needed,
the script registers its own class).
"""

import asyncio

from mcp_agent.agents.agent import Agent
from mcp_agent.core.fastagent import FastAgent

fast = FastAgent("example-custom")


class LoudAgent(Agent):
    """Replies in capitals."""

    async def send(self, message):  # noqa: ANN001, ANN201 - upstream's signature
        return (await super().send(message)).upper()


@fast.custom(LoudAgent, name="loud", instruction="Be emphatic.")
async def main() -> None:
    async with fast.run() as app:
        print(await app.loud.send("databases are the source of truth"))


if __name__ == "__main__":
    asyncio.run(main())

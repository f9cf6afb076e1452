"""`fast-agent-db run` and `chat`: run a stored agent or workflow with no Python file."""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_agent.db.cli.options import (
    DatabaseUrlOption,
    agent_name_text,
    model_name_text,
    plain_text,
    session_option,
)
from mcp_agent.db.cli.output import console, run_async
from mcp_agent.db.fastagent import FastAgent
from mcp_agent.db.urls import resolve_database_url

SessionOption = Annotated[
    str | None, session_option("Continue this session (default: a new one, shown).")
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model for agents whose definition names none (as upstream).",
        parser=model_name_text,
    ),
]


async def _app(
    database_url: str | None, agent: str, model: str | None, session: str | None
) -> FastAgent:
    fast = FastAgent(
        "fast-agent-db", database_url=database_url, session_id=session, parse_cli_args=False
    )
    if model:
        # Upstream's --model: used for agents without a model of their own.
        fast.args.model = model
    await fast.load_definitions(agent)
    return fast


def run(
    agent: Annotated[
        str,
        typer.Argument(
            help="The agent or workflow to run.", metavar="AGENT", parser=agent_name_text
        ),
    ],
    message: Annotated[
        str, typer.Option("-m", "--message", help="The message to send.", parser=plain_text)
    ],
    session: SessionOption = None,
    model: ModelOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Send one message to a stored agent or workflow and print the reply."""

    async def work() -> str:
        fast = await _app(resolve_database_url(database_url), agent, model, session)
        async with fast.run() as app:
            return await app[agent].send(message)

    console.print(run_async(work()), markup=False, highlight=False, soft_wrap=True)


def chat(
    agent: Annotated[
        str,
        typer.Argument(
            help="The agent or workflow to talk to.", metavar="AGENT", parser=agent_name_text
        ),
    ],
    session: SessionOption = None,
    model: ModelOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Talk to a stored agent or workflow in upstream's interactive prompt."""

    async def work() -> None:
        fast = await _app(resolve_database_url(database_url), agent, model, session)
        async with fast.run() as app:
            await app.interactive(agent_name=agent)

    run_async(work())

"""`fast-agent-db tour`: the main job, end to end, offline, on the embedded default database.

1. create (or open) the database and upgrade it;
2. import an example configuration and a multi-agent workflow (a chain with a tool-using
   agent), with the bundled fake OpenAI-compatible server standing in for a provider;
3. run the workflow once with a tool call, then resume the same session from a second
   process;
4. print the stored transcript, the execution trees with tokens and cost, and the events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

from mcp_agent.db.cli import executions as executions_cli
from mcp_agent.db.cli import sessions as sessions_cli
from mcp_agent.db.cli.db import _status, print_status, upgrade_database
from mcp_agent.db.cli.logs import logs
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import console, fail, run_async
from mcp_agent.db.conversations.sql import make_session_id
from mcp_agent.db.definitions.bundles import read_bundle
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import ConfigDocument, document_from_yaml
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.settings.yaml_files import parse_yaml
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from mcp_agent.db.urls import resolve_database_url

BASE_URL_ENV = "FAST_AGENT_DB_TOUR_BASE_URL"
TURNS = (
    'CALL calculator-add {"a": 19, "b": 23}',
    "What does that number mean for the report?",
)


async def _prepare(raw_url: str) -> None:
    assets = files("mcp_agent.db.tour")
    imported = document_from_yaml(
        parse_yaml(assets.joinpath("fastagent.config.yaml").read_text(), source="tour config")
    )

    def merge(current: ConfigDocument) -> ConfigDocument:
        # Merged, not replaced: the default database may hold the user's own settings.
        current.settings.update(imported.settings)
        current.providers.update(imported.providers)
        return edits.add_server(
            current,
            "calculator",
            {"command": sys.executable, "args": ["-m", "mcp_agent.db.tour.calculator_server"]},
            replace=True,
        )

    bundle = Path(str(assets.joinpath("workflow.yaml")))
    async with await DatabaseRuntime.open(raw_url) as runtime:
        await SqlSettingsStore(runtime).update(merge, changed_by="tour")
        await SqlModelCatalog(runtime).set_price(
            "generic",
            "fake-model",
            prices={"input_price_per_mtok": Decimal(2), "output_price_per_mtok": Decimal(8)},
            changed_by="tour",
        )
        await SqlDefinitionStore(runtime).put(read_bundle(bundle), source="tour", created_by="tour")


async def _roots(raw_url: str, session_id: str) -> list[str]:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        roots = await SqlExecutionStore(runtime).roots(limit=50)
    return [root.execution_id for root in reversed(roots) if root.session_id == session_id]


def tour(database_url: DatabaseUrlOption = None) -> None:
    """The main job: database, config, workflow with a tool call, resume, transcript,
    execution tree with tokens and cost, events. Offline."""
    raw_url = resolve_database_url(database_url)
    console.rule("1. the database")
    upgrade_database(raw_url)
    print_status(run_async(_status(raw_url)))

    with FakeOpenAIServer() as server:
        console.rule("2. configuration and workflow, imported into the database")
        os.environ[BASE_URL_ENV] = server.base_url
        run_async(_prepare(raw_url))
        console.print(
            "Imported the example config (model generic.fake-model, served offline at "
            f"{server.base_url}), the calculator MCP server, and the workflow "
            "'report' = chain(researcher -> writer)."
        )

        session_id = make_session_id()
        for number, message in enumerate(TURNS, start=1):
            console.rule(
                f"3.{number} process {number}: fast-agent-db run report --session {session_id}"
            )
            console.print(f"[bold]user:[/] {message}")
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mcp_agent.db.cli",
                    "run",
                    "report",
                    "-m",
                    message,
                    "--session",
                    session_id,
                    "--database-url",
                    raw_url,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, BASE_URL_ENV: server.base_url},
            )
            if result.returncode != 0:
                fail(f"the run failed:\n{result.stderr.strip()}")
            console.print(f"[bold]report:[/] {result.stdout.strip()}", highlight=False)

    console.rule("4. the transcript, as stored")
    sessions_cli.show(session_id, agent=None, database_url=raw_url)
    console.rule("5. the execution trees, with tokens and cost")
    for root in run_async(_roots(raw_url, session_id)):
        executions_cli.show(root, database_url=raw_url)
    console.rule("6. recent events of the session")
    logs(
        session=session_id,
        agent=None,
        level=None,
        since=None,
        limit=15,
        follow=False,
        database_url=raw_url,
    )
    console.rule("done")
    console.print(
        f"Explore: fast-agent-db sessions show {session_id} | executions list | usage | "
        "logs | agents list | config show"
    )

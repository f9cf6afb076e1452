"""`fast-agent-db tour`: the main job, end to end, offline, on an embedded SQLite database.

The tour works in a database file of its own (./fastagent-tour.db) unless `--database-url`
names one explicitly: FAST_AGENT_DATABASE_URL is the user's database, which a demo must not
change. In a database given explicitly, settings and definitions the tour would change that
hold something else are listed and the tour asks first (`--yes` to go ahead without asking).

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
from typing import Annotated, Any

import typer

from mcp_agent.db.cli import executions as executions_cli
from mcp_agent.db.cli import sessions as sessions_cli
from mcp_agent.db.cli.db import _status, print_status, upgrade_database
from mcp_agent.db.cli.logs import _line as event_line
from mcp_agent.db.cli.options import GLOBAL_DATABASE_URL_META_KEY
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.conversations.sql import make_session_id
from mcp_agent.db.definitions.bundles import read_bundle
from mcp_agent.db.definitions.specs import AgentSpec
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.events.queries import read_events
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import ConfigDocument, document_from_yaml
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.settings.yaml_files import parse_yaml
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from mcp_agent.db.urls import redact_url

BASE_URL_ENV = "FAST_AGENT_DB_TOUR_BASE_URL"
TURNS = (
    'CALL calculator-add {"a": 19, "b": 23}',
    "What does that number mean for the report?",
)
TURN_NOTES = (
    "The researcher called the calculator MCP tool (calculator-add -> 42) and the writer got "
    "its answer through the chain; both turns are now rows in the database.",
    "A new process, same session: 'user message 2' shows the models were sent the first "
    "turn too - the history came back from the database.",
)
#: Events shown in section 6.
EVENTS_SHOWN = 15


#: The tour's own database, in the working directory, when no --database-url is given.
TOUR_DATABASE_URL = "sqlite:///fastagent-tour.db"
CALCULATOR = {"command": sys.executable, "args": ["-m", "mcp_agent.db.tour.calculator_server"]}


def _tour_document() -> ConfigDocument:
    assets = files("mcp_agent.db.tour")
    return document_from_yaml(
        parse_yaml(assets.joinpath("fastagent.config.yaml").read_text(), source="tour config")
    )


def _tour_workflow() -> list[AgentSpec]:
    return read_bundle(Path(str(files("mcp_agent.db.tour").joinpath("workflow.yaml"))))


def _merge(current: ConfigDocument) -> ConfigDocument:
    imported = _tour_document()
    current.settings.update(imported.settings)
    current.providers.update(imported.providers)
    return edits.add_server(current, "calculator", CALCULATOR, replace=True)


def _differs(current: Any, wanted: Any) -> bool:
    return current is not None and current != wanted


async def _conflicts(raw_url: str) -> list[str]:
    """What the tour would overwrite that holds something else now."""
    async with await DatabaseRuntime.open(raw_url) as runtime:
        current = await SqlSettingsStore(runtime).load_document()
        definitions = await SqlDefinitionStore(runtime).current()
    merged = _merge(current.model_copy(deep=True))
    found = [
        f"setting {key}"
        for key in merged.settings
        if _differs(current.settings.get(key), merged.settings[key])
    ]
    found += [
        f"provider {name}"
        for name in merged.providers
        if _differs(current.providers.get(name), merged.providers[name])
    ]
    if _differs(current.servers.get("calculator"), merged.servers["calculator"]):
        found.append("MCP server calculator")
    for spec in _tour_workflow():
        stored = definitions.get(spec.name)
        if stored is not None and stored.spec != spec:
            found.append(f"agent {spec.name} (a new version would be stored)")
    return found


async def _prepare(raw_url: str) -> None:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        await SqlSettingsStore(runtime).update(_merge, changed_by="tour")
        await SqlModelCatalog(runtime).set_price(
            "generic",
            "fake-model",
            prices={"input_price_per_mtok": Decimal(2), "output_price_per_mtok": Decimal(8)},
            changed_by="tour",
        )
        await SqlDefinitionStore(runtime).put(_tour_workflow(), source="tour", created_by="tour")


def _ask_before_overwriting(raw_url: str, *, yes: bool) -> None:
    conflicts = run_async(_conflicts(raw_url))
    if not conflicts or yes:
        return
    listed = "\n".join(f"  - {conflict}" for conflict in conflicts)
    message = f"The tour would change what the database {redact_url(raw_url)} holds:\n{listed}"
    if not sys.stdin.isatty():
        fail(
            f"{message}\nNothing was changed. Run the tour without --database-url (it then "
            "uses ./fastagent-tour.db), or pass --yes to change these.",
            code=EXIT_BAD_INPUT,
        )
    console.print(message, markup=False, highlight=False)
    if not typer.confirm("Change them?", default=False):
        fail("Nothing was changed.", code=EXIT_BAD_INPUT)


async def _session_events(raw_url: str, session_id: str, count: int) -> list[str]:
    """The session's first `count` events at info level and above: the runs from the start."""
    async with await DatabaseRuntime.open(raw_url) as runtime:
        found = await read_events(
            runtime, session_id=session_id, min_level="info", after_event_id=0
        )
    return [event_line(record) for _event_id, record in found[:count]]


async def _roots(raw_url: str, session_id: str) -> list[str]:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        roots = await SqlExecutionStore(runtime).roots(limit=50)
    return [root.execution_id for root in reversed(roots) if root.session_id == session_id]


def tour(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run the tour in this database (default: its own ./fastagent-tour.db; "
            "FAST_AGENT_DATABASE_URL is not used).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Change settings and definitions the database holds without asking."
        ),
    ] = False,
) -> None:
    """The main job: database, config, workflow with a tool call, resume, transcript,
    execution tree with tokens and cost, events. Offline, in its own database file."""
    # `fast-agent-db --database-url URL tour` names a database explicitly too.
    raw_url = database_url or ctx.meta.get(GLOBAL_DATABASE_URL_META_KEY) or TOUR_DATABASE_URL
    explore = f" --database-url '{redact_url(raw_url)}'"
    console.heading("1. the database")
    upgrade_database(raw_url)
    print_status(run_async(_status(raw_url)))
    _ask_before_overwriting(raw_url, yes=yes)

    with FakeOpenAIServer() as server:
        console.heading("2. configuration and workflow, imported into the database")
        os.environ[BASE_URL_ENV] = server.base_url
        run_async(_prepare(raw_url))
        console.print(
            "Imported the example config (model generic.fake-model, served offline at "
            f"{server.base_url}), the calculator MCP server, and the workflow "
            "'report' = chain(researcher -> writer).\n"
            "The offline model is a stand-in: it calls a tool when asked to (CALL ...), and "
            "otherwise answers 'reply to: <message> (user message N)', where N counts the "
            "user messages the request carried - so N shows how much history came back.",
            highlight=False,
        )

        session_id = make_session_id()
        for number, message in enumerate(TURNS, start=1):
            console.heading(
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
            console.print(TURN_NOTES[number - 1], style="italic", highlight=False)

    console.heading("4. the transcript, as stored")
    sessions_cli.show(session_id, agent=None, database_url=raw_url)
    console.heading("5. the execution trees, with tokens and cost")
    for root in run_async(_roots(raw_url, session_id)):
        executions_cli.show(root, database_url=raw_url)
    console.heading("6. the session's events, from the start of the first run")
    for line in run_async(_session_events(raw_url, session_id, EVENTS_SHOWN)):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.heading("done")
    console.print(
        f"Explore: fast-agent-db sessions show {session_id}{explore} | executions list | usage "
        "| logs | agents list | config show (each with the same --database-url)",
        highlight=False,
    )

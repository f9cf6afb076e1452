"""A custom agent class only its script can provide (defined inside a function, or in
`__main__`) is recorded as a definition marked as needing the script, and the run goes on;
loading that definition without the script says which agent needs which script."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp_agent.agents.agent import Agent
from mcp_agent.agents.workflow.evaluator_optimizer import QualityRating
from mcp_agent.core.prompt import Prompt
from mcp_agent.core.request_params import RequestParams
from mcp_agent.logging.logger import LoggingConfig
from mcp_agent.logging.transport import AsyncEventBus
from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart

from mcp_agent.db import FastAgent
from mcp_agent.db.definitions.in_memory import InMemoryDefinitionStore
from mcp_agent.db.definitions.loader import captured_specs, register_definitions
from mcp_agent.db.definitions.specs import AGENT_SPEC, CustomAgentSpec, DefinitionError
from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: An unchanged upstream script: upstream's FastAgent (the database comes from
#: FAST_AGENT_DATABASE_URL), a custom class made inside a function, and an
#: evaluator-optimizer given upstream's QualityRating enum.
SCRIPT = """
import asyncio

from mcp_agent.agents.agent import Agent
from mcp_agent.agents.workflow.evaluator_optimizer import QualityRating
from mcp_agent.core.fastagent import FastAgent
from mcp_agent.core.prompt import Prompt

fast = FastAgent("script-classes", parse_cli_args=False)


def shouting_agent_class():
    class ShoutingAgent(Agent):
        async def generate(self, multipart_messages, request_params=None):
            reply = await super().generate(multipart_messages, request_params)
            return Prompt.assistant(reply.all_text().upper())

    return ShoutingAgent


@fast.custom(shouting_agent_class(), name="shouter", model="passthrough")
@fast.agent(name="drafter", model="passthrough")
@fast.agent(name="judge", model="passthrough")
@fast.evaluator_optimizer(
    name="refiner",
    generator="drafter",
    evaluator="judge",
    min_rating=QualityRating.EXCELLENT,
    max_refinements=1,
)
async def main():
    async with fast.run() as app:
        print("REPLY:" + await app.shouter.send("hello from a script"))


if __name__ == "__main__":
    asyncio.run(main())
"""
SCRIPT_CLASS = "__main__.shouting_agent_class.<locals>.ShoutingAgent"


async def _current(database_url: str) -> dict:
    async with await DatabaseRuntime.open(database_url) as runtime:
        return await SqlDefinitionStore(runtime).current()


def _assert_needs_the_script(error: str, agent: str, agent_class: str) -> None:
    assert f"{agent}.agent_class: {agent_class!r} cannot be loaded without the script" in error
    assert "defined inside a function" in error


@pytest.mark.slow
@pytest.mark.sqlite
async def test_an_upstream_script_with_a_class_made_in_a_function_runs_with_a_database(
    tmp_path: Path, fresh_upstream_state
) -> None:
    database_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
    environment["PYTHONPATH"] = str(ROOT)
    environment["FAST_AGENT_DATABASE_URL"] = database_url
    upgrade = run_guarded(
        [str(BIN / "fast-agent-db"), "db", "upgrade", "--database-url", database_url],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    script = tmp_path / "agent_script.py"
    script.write_text(SCRIPT)

    for _run in range(2):  # the second run finds its definitions stored, unchanged
        result = run_guarded(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "REPLY:HELLO FROM A SCRIPT" in result.stdout, result.stdout

    current = await _current(database_url)
    shouter = current["shouter"]
    assert isinstance(shouter.spec, CustomAgentSpec)
    assert (shouter.spec.agent_class, shouter.spec.requires_script) == (SCRIPT_CLASS, True)
    assert (shouter.version, shouter.source) == (1, "decorator")
    assert current["refiner"].spec.min_rating == "EXCELLENT"
    assert current["refiner"].version == 1

    shown = await ainvoke("agents", "show", "shouter", "--database-url", database_url)
    assert shown.exit_code == 0, shown.output
    assert "requires_script: true" in shown.output

    # Without the script (here: fast-agent-db's own process) the class cannot exist.
    refused = await ainvoke("run", "shouter", "-m", "hi", "--database-url", database_url)
    assert refused.exit_code == 2, refused.output
    _assert_needs_the_script(" ".join(refused.output.split()), "shouter", SCRIPT_CLASS)
    # Agents that do not depend on it still run from the database alone. Each CLI
    # invocation runs its own event loop; upstream's logging is reset for it likewise.
    LoggingConfig._initialized = False
    AsyncEventBus.reset()
    drafter = await ainvoke("run", "drafter", "-m", "draft", "--database-url", database_url)
    assert drafter.exit_code == 0, drafter.output
    # The reply is the last line, after upstream's chat display when that is on (whether it
    # is depends on logging state earlier tests in this process left).
    assert drafter.stdout.splitlines()[-1] == "draft", drafter.stdout


async def test_a_class_defined_in_the_test_function_runs_in_process(
    database_url: str, fresh_upstream_state
) -> None:
    # As upstream's own tests do: the class and the decorated function are local.
    class ShoutingAgent(Agent):
        async def generate(
            self,
            multipart_messages: list[PromptMessageMultipart],
            request_params: RequestParams | None = None,
        ) -> PromptMessageMultipart:
            reply = await super().generate(multipart_messages, request_params)
            return Prompt.assistant(reply.all_text().upper())

    for args in (
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
    ):
        assert (await ainvoke(*args, "--database-url", database_url)).exit_code == 0
    fast = FastAgent("script-classes", database_url=database_url, parse_cli_args=False)

    @fast.custom(ShoutingAgent, name="shouter", model="passthrough")
    @fast.agent(name="drafter", model="passthrough")
    @fast.agent(name="judge", model="passthrough")
    @fast.evaluator_optimizer(
        name="refiner",
        generator="drafter",
        evaluator="judge",
        min_rating=QualityRating.FAIR,
        max_refinements=1,
    )
    async def _workflows() -> None: ...

    async with fast.run() as app:
        assert await app.shouter.send("hello in process") == "HELLO IN PROCESS"

    local_class = f"{__name__}.{ShoutingAgent.__qualname__}"
    assert "<locals>" in local_class
    current = await _current(database_url)
    assert current["shouter"].spec.agent_class == local_class
    assert current["shouter"].spec.requires_script is True
    assert current["refiner"].spec.min_rating == "FAIR"
    assert set(fast.definition_versions) == {"shouter", "drafter", "judge", "refiner"}

    # The script itself can load the definition: its decorator registered the class.
    fast.agents.pop("refiner")
    await fast.load_definitions("shouter", "refiner")
    assert fast.agents["shouter"]["agent_class"] is ShoutingAgent

    # Another app (no decorator for it) cannot, and is told why.
    without_script = FastAgent("elsewhere", database_url=database_url, parse_cli_args=False)
    with pytest.raises(DefinitionError) as refused:
        await without_script.load_definitions("shouter")
    assert refused.value.problems == [
        f"shouter.agent_class: {local_class!r} cannot be loaded without the script that "
        "defines it (it is defined inside a function); run this agent from that script, or "
        "move the class to an importable module"
    ]
    assert "shouter" not in without_script.agents


async def test_a_script_bound_class_is_kept_by_every_store_and_refused_when_loaded(
    database_url: str, fresh_upstream_state
) -> None:
    class LocalAgent(Agent):
        pass

    fast = FastAgent("stores", database_url=database_url, parse_cli_args=False)

    @fast.custom(LocalAgent, name="local", model="passthrough")
    @fast.chain(name="pipeline", sequence=["local"])
    async def _workflows() -> None: ...

    specs = captured_specs(fast.agents)
    async with await DatabaseRuntime.open(database_url) as runtime:
        sql = SqlDefinitionStore(runtime)
        memory = InMemoryDefinitionStore()
        for store in (memory, sql):
            # Refused where classes must import (a bundle, the CLI), kept for a running script.
            with pytest.raises(DefinitionError, match="cannot be loaded without the script"):
                await store.put(specs, source="test")
            results = await store.put(specs, source="decorator", check_imports=False)
            assert {r.outcome for r in results} == {"created"}
            again = await store.put(specs, source="decorator", check_imports=False)
            assert {r.outcome for r in again} == {"unchanged"}
            # A rollback restores a stored version whatever its class.
            rolled = await store.rollback("local", 1)
            assert (rolled.version, rolled.outcome) == (1, "unchanged")

            definitions = await store.current()
            assert definitions["local"].spec.requires_script is True
            registered: dict = {}
            with pytest.raises(DefinitionError) as refused:
                register_definitions(registered, definitions, ["pipeline"], known_servers=set())
            _assert_needs_the_script(
                str(refused.value), "local", definitions["local"].spec.agent_class
            )
            assert registered == {}


@pytest.mark.parametrize(
    ("agent_class", "requires_script"),
    [
        ("tests.support.custom_agents.ShoutingAgent", False),
        ("package.module.Outer.Inner", False),
        ("__main__.MyAgent", True),
        ("package.module.make.<locals>.MyAgent", True),
        ("fast_agent_db_import.MyAgent", True),
    ],
)
def test_requires_script_is_derived_from_the_class_path(
    agent_class: str, requires_script: bool
) -> None:
    for given in (True, False):
        spec = AGENT_SPEC.validate_python(
            {
                "name": "a",
                "type": "custom",
                "agent_class": agent_class,
                "requires_script": given,
            }
        )
        assert spec.requires_script is requires_script

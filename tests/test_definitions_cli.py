"""Definitions through the CLI and the library: scripts, bundles, versions, deletion."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.runtime import DatabaseRuntime
from tests.support.cli import ainvoke
from tests.support.processes import run_guarded

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"

SCRIPT = """
import asyncio, os
from mcp_agent.db import FastAgent

fast = FastAgent("scripted", database_url=os.environ["DB_URL"], parse_cli_args=False)

@fast.agent(name="helper", instruction={instruction!r}, model="passthrough")
@fast.chain(name="flow", sequence=["helper"])
async def main():
    async with fast.run() as app:
        print("REPLY:", await app.flow.send("hi"))
        print("VERSIONS:", sorted(fast.definition_versions))

if __name__ == "__main__":
    asyncio.run(main())
"""


async def _current(database_url: str) -> dict:
    async with await DatabaseRuntime.open(database_url) as runtime:
        return await SqlDefinitionStore(runtime).current()


async def _versions(database_url: str, name: str) -> list[int]:
    async with await DatabaseRuntime.open(database_url) as runtime:
        return [d.version for d in await SqlDefinitionStore(runtime).versions(name)]


def _run_script(path: Path, database_url: str) -> str:
    result = run_guarded(
        [sys.executable, str(path)],
        cwd=path.parent,
        env={**os.environ, "DB_URL": database_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
async def test_a_decorator_script_registers_what_it_runs(database_url, tmp_path) -> None:
    for args in (
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
    ):
        assert (await ainvoke(*args, "--database-url", database_url)).exit_code == 0
    script = tmp_path / "app.py"
    script.write_text(SCRIPT.format(instruction="First."))
    assert "REPLY: hi" in _run_script(script, database_url)
    assert _run_script(script, database_url)  # unchanged: no new version
    assert await _versions(database_url, "helper") == [1]

    script.write_text(SCRIPT.format(instruction="Second."))
    _run_script(script, database_url)
    assert await _versions(database_url, "helper") == [1, 2]
    current = await _current(database_url)
    assert current["helper"].spec.instruction == "Second."
    assert current["helper"].source == "decorator"
    assert current["flow"].version == 1


async def test_export_then_import_gives_the_same_definitions(database_url, tmp_path) -> None:
    imported = await ainvoke(
        "agents", "import", str(WORKFLOWS / "every_type.yaml"), "--database-url", database_url
    )
    assert imported.exit_code == 0, imported.output
    bundle = tmp_path / "bundle.yaml"
    exported = await ainvoke("agents", "export", "-o", str(bundle), "--database-url", database_url)
    assert exported.exit_code == 0, exported.output

    fresh = tmp_path / "fresh.db"
    await ainvoke("db", "upgrade", "--database-url", f"sqlite:///{fresh}")
    again = await ainvoke("agents", "import", str(bundle), "--database-url", f"sqlite:///{fresh}")
    assert again.exit_code == 0, again.output
    before = {n: d.spec for n, d in (await _current(database_url)).items()}
    after = {n: d.spec for n, d in (await _current(f"sqlite:///{fresh}")).items()}
    assert after == before
    # Importing the same bundle again changes nothing.
    unchanged = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)
    assert unchanged.output.count("unchanged") == len(before)


async def test_import_of_a_script_registers_its_decorators_without_running_main(
    database_url, tmp_path
) -> None:
    marker = tmp_path / "main-ran"
    script = tmp_path / "workflow.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            from pathlib import Path
            from mcp_agent.core.fastagent import FastAgent

            fast = FastAgent("scripted")

            @fast.agent(name="writer", instruction="Write.", model="passthrough")
            @fast.agent(name="editor", model="passthrough")
            @fast.chain(name="publish", sequence=["writer", "editor"], cumulative=True)
            async def main():
                Path({str(marker)!r}).write_text("ran")

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    result = await ainvoke("agents", "import", str(script), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    current = await _current(database_url)
    assert current["publish"].spec.sequence == ["writer", "editor"]
    assert current["publish"].spec.cumulative is True
    assert current["writer"].spec.instruction == "Write."


async def test_show_history_rollback_and_delete(database_url, tmp_path) -> None:
    url = ["--database-url", database_url]
    first = tmp_path / "v1.yaml"
    first.write_text(
        "agents:\n  - {name: a, type: agent, instruction: One.}\n"
        "  - {name: c, type: chain, sequence: [a]}\n"
    )
    second = tmp_path / "v2.yaml"
    second.write_text("agents:\n  - {name: a, type: agent, instruction: Two.}\n")
    await ainvoke("agents", "import", str(first), *url)
    result = await ainvoke("agents", "import", str(second), *url)
    assert "updated   a (version 2)" in result.output

    shown = await ainvoke("agents", "show", "a", "--version", "1", *url)
    assert "instruction: One." in shown.output and "version 1" in shown.output
    assert "│ 2 " in (await ainvoke("agents", "history", "a", *url)).output

    rolled = await ainvoke("agents", "rollback", "a", "1", *url)
    assert "updated   a (version 3)" in rolled.output
    assert "instruction: One." in (await ainvoke("agents", "show", "a", *url)).output

    refused = await ainvoke("agents", "delete", "a", *url)
    assert refused.exit_code == 2
    assert "a: cannot be deleted, used by c" in refused.output
    assert (await ainvoke("agents", "delete", "c", *url)).exit_code == 0
    assert (await ainvoke("agents", "delete", "a", *url)).exit_code == 0
    assert "a" not in (await _current(database_url))


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        (
            "agents:\n  - {name: a, type: chain, sequence: [b]}\n"
            "  - {name: b, type: chain, sequence: [a]}\n",
            "dependency cycle: a -> b -> a",
        ),
        (
            "agents:\n  - {name: a, type: agent, servers: [nowhere]}\n",
            "a.servers: unknown MCP server 'nowhere'",
        ),
        ("agents:\n  - {name: a, type: wizard}\n", "agents[0] (a)"),
        ("agents:\n  - {name: a, type: agent, colour: red}\n", "agents[0] (a).colour"),
        ("nothing: here\n", "expected a top-level 'agents:' list"),
    ],
)
async def test_bad_bundles_are_refused_naming_the_problem(
    database_url, tmp_path, bundle: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(bundle)
    result = await ainvoke("agents", "import", str(path), "--database-url", database_url)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert await _current(database_url) == {}


async def test_running_an_unknown_agent_names_the_known_ones(database_url) -> None:
    await ainvoke(
        "agents", "import", str(WORKFLOWS / "every_type.yaml"), "--database-url", database_url
    )
    result = await ainvoke("run", "ghost", "-m", "hi", "--database-url", database_url)
    assert result.exit_code == 2
    assert "ghost: no such agent definition (known: " in result.output

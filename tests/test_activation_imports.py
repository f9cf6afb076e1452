"""The drop-in activation costs nothing when no database is configured.

Importing upstream's FastAgent in a fresh interpreter with the activation installed must load
the same modules as with it switched off, apart from the activation's own light modules: no
SQLAlchemy, no driver, none of mcp_agent.db's database code. With a database configured the
import hands out the database-backed FastAgent. Each case runs in its own interpreter, because
sys.modules of the test process already holds all of fast-agent-db.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import run_guarded

pytestmark = pytest.mark.slow

# What activation itself loads: the .pth line's hook and the dependency-free modules it reads.
ACTIVATION_MODULES = {
    "fast_agent_db_hook",
    "mcp_agent.db",
    "mcp_agent.db.activation",
    "mcp_agent.db.environment_variables",
}

# Run in a fresh interpreter. With "off", the finder the .pth line installed is taken off
# sys.meta_path before the import, which leaves the interpreter as if the fork were absent.
PROBE = """
import json, sys
had_finder = any(type(f).__name__ == "_FastAgentDbFinder" for f in sys.meta_path)
if sys.argv[1] == "off":
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_FastAgentDbFinder"]
import mcp_agent.core.fastagent
print(json.dumps({
    "had_finder": had_finder,
    "modules": sorted(sys.modules),
    "fastagent_bases": [f"{c.__module__}.{c.__qualname__}"
                        for c in mcp_agent.core.fastagent.FastAgent.__mro__],
}))
"""

NO_DATABASE_CONFIGS = {
    "no config file": None,
    "config file without a database": "default_model: passthrough\n",
}


def _import_fastagent(
    workdir: Path, activation: str, database_url: str | None = None
) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
    if database_url is not None:
        environment["FAST_AGENT_DATABASE_URL"] = database_url
    result = run_guarded(
        [sys.executable, "-c", PROBE, activation],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    probe: dict[str, Any] = json.loads(result.stdout)
    assert probe["had_finder"], "fast_agent_db.pth did not install its finder"
    return probe


@pytest.mark.parametrize("config", NO_DATABASE_CONFIGS.values(), ids=NO_DATABASE_CONFIGS.keys())
def test_with_no_database_importing_fastagent_loads_only_what_upstream_loads(
    tmp_path: Path, config: str | None
) -> None:
    if config is not None:
        (tmp_path / "fastagent.config.yaml").write_text(config, encoding="utf-8")

    active = set(_import_fastagent(tmp_path, "on")["modules"])
    upstream = set(_import_fastagent(tmp_path, "off")["modules"])

    assert "fast_agent_db_hook" not in upstream, "switching the activation off did not work"
    assert "mcp_agent.db.activation" in active, "the activation did not run"
    assert active - upstream == ACTIVATION_MODULES
    assert upstream - active == set()


@pytest.mark.parametrize("source", ["environment", "config file"])
def test_with_a_database_configured_importing_fastagent_gives_the_database_class(
    tmp_path: Path, source: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'agents.db'}"
    if source == "config file":
        (tmp_path / "fastagent.config.yaml").write_text(
            f"database:\n  url: {json.dumps(database_url)}\n", encoding="utf-8"
        )
        probe = _import_fastagent(tmp_path, "on")
    else:
        probe = _import_fastagent(tmp_path, "on", database_url=database_url)

    assert "mcp_agent.db.fastagent.FastAgent" in probe["fastagent_bases"]
    assert "mcp_agent.core.fastagent.FastAgent" in probe["fastagent_bases"]

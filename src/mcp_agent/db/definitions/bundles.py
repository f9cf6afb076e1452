"""Agent bundles: YAML files of definitions, and upstream-style Python scripts."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcp_agent.db.definitions.loader import captured_specs
from mcp_agent.db.definitions.specs import (
    AGENT_SPEC,
    SCRIPT_IMPORT_MODULE,
    AgentDefinition,
    AgentSpec,
    DefinitionError,
)
from mcp_agent.db.settings.document import ConfigError
from mcp_agent.db.settings.yaml_files import dump_yaml, read_yaml_file


def read_bundle(path: Path) -> list[AgentSpec]:
    """Definitions from a `.yaml`/`.yml` bundle or a `.py` script (its main is not run)."""
    if path.suffix == ".py":
        return read_script(path)
    try:
        # Within the YAML bounds (size, alias expansion, depth): see settings.yaml_files.
        document = read_yaml_file(path)
    except ConfigError as error:
        raise DefinitionError(error.problems) from None
    entries = document.get("agents")
    if not isinstance(entries, list):
        raise DefinitionError([f"{path}: expected a top-level 'agents:' list of definitions"])
    specs: list[AgentSpec] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        label = entry.get("name", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        try:
            specs.append(AGENT_SPEC.validate_python(entry))
        except ValidationError as error:
            for detail in error.errors():
                field = ".".join(str(part) for part in detail["loc"][1:]) or "(definition)"
                problems.append(f"{path}: agents[{index}] ({label}).{field}: {detail['msg']}")
    if problems:
        raise DefinitionError(problems)
    return specs


def read_script(path: Path) -> list[AgentSpec]:
    """Execute a script as a module (so `if __name__ == "__main__":` does not fire) and
    capture the agents its FastAgent decorators registered."""
    from mcp_agent.core.fastagent import FastAgent

    if not path.is_file():
        raise DefinitionError([f"{path}: no such file"])
    saved_argv = sys.argv
    sys.argv = [str(path)]  # upstream's FastAgent parses sys.argv when constructed
    try:
        namespace = runpy.run_path(str(path), run_name=SCRIPT_IMPORT_MODULE)
    except SystemExit as error:
        raise DefinitionError(
            [f"{path}: the script exited while being imported ({error})"]
        ) from None
    except Exception as error:
        raise DefinitionError([f"{path}: importing the script failed: {error!r}"]) from None
    finally:
        sys.argv = saved_argv
    apps = [value for value in namespace.values() if isinstance(value, FastAgent)]
    if not apps:
        raise DefinitionError([f"{path}: no FastAgent instance found at module level"])
    agents: dict[str, dict[str, Any]] = {}
    for app in apps:
        agents.update(app.agents)
    return captured_specs(agents)


def bundle_yaml(definitions: Iterable[AgentDefinition]) -> str:
    return dump_yaml(
        {"agents": [d.spec.model_dump(mode="json", exclude_none=True) for d in definitions]}
    )

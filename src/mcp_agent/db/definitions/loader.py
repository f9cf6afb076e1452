"""Putting stored definitions into a FastAgent, and recording a script's agents."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from mcp_agent.db.definitions.registration import capture, load_agent_class, register
from mcp_agent.db.definitions.specs import (
    AgentDefinition,
    AgentSpec,
    CustomAgentSpec,
    DefinitionError,
)
from mcp_agent.db.definitions.validation import closure, problems_of


def register_definitions(
    agents: MutableMapping[str, dict[str, Any]],
    definitions: Mapping[str, AgentDefinition],
    roots: list[str],
    *,
    known_servers: set[str],
) -> dict[str, int | None]:
    """Register `roots` and everything they depend on; returns name -> agent_version_id.

    The first root is registered first, so it is the app's default agent unless a
    definition says `default: true`; the rest follow by name, so the order never depends on
    hashing or on the database's row order.

    Raises:
        DefinitionError: a root does not exist, or the selected definitions are invalid.
    """
    missing = [name for name in roots if name not in definitions]
    if missing:
        known = ", ".join(sorted(definitions)) or "none"
        raise DefinitionError(
            [f"{name}: no such agent definition (known: {known})" for name in missing]
        )
    specs = closure({name: d.spec for name, d in definitions.items()}, roots)
    problems = problems_of(specs, known_servers=known_servers, check_imports=False)
    # Classes are loaded here rather than checked by validation, so that a class the running
    # script registered itself (one only that script can provide) is the one used.
    agent_classes: dict[str, type] = {}
    for name, spec in sorted(specs.items()):
        if isinstance(spec, CustomAgentSpec):
            try:
                agent_classes[name] = load_agent_class(spec, agents.get(name))
            except DefinitionError as error:
                problems.extend(error.problems)
    if problems:
        raise DefinitionError(problems)
    ordered = [*roots, *sorted(name for name in specs if name not in roots)]
    for name in ordered:
        register(agents, specs[name], agent_class=agent_classes.get(name))
    return {name: definitions[name].agent_version_id for name in ordered}


def captured_specs(agents: Mapping[str, dict[str, Any]]) -> list[AgentSpec]:
    """The specs of a FastAgent's registered agents (decorators or loaded definitions)."""
    return [capture(name, entry) for name, entry in agents.items()]

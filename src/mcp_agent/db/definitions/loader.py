"""Putting stored definitions into a FastAgent, and recording a script's agents."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from mcp_agent.db.definitions.registration import capture, register
from mcp_agent.db.definitions.specs import AgentDefinition, AgentSpec, DefinitionError
from mcp_agent.db.definitions.validation import closure, validate


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
    validate(specs, known_servers=known_servers)
    ordered = [*roots, *sorted(name for name in specs if name not in roots)]
    for name in ordered:
        register(agents, specs[name])
    return {name: definitions[name].agent_version_id for name in ordered}


def captured_specs(agents: Mapping[str, dict[str, Any]]) -> list[AgentSpec]:
    """The specs of a FastAgent's registered agents (decorators or loaded definitions)."""
    return [capture(name, entry) for name, entry in agents.items()]

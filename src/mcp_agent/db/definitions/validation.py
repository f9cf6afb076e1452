"""Checks a set of definitions before anything is stored or run."""

from __future__ import annotations

from collections.abc import Mapping

from mcp_agent.db.definitions.registration import load_agent_class
from mcp_agent.db.definitions.specs import (
    AgentSpec,
    ChainSpec,
    CustomAgentSpec,
    DefinitionError,
    OrchestratorSpec,
    ParallelSpec,
    RouterSpec,
)
from mcp_agent.db.settings.document import is_known_model

#: Child types upstream's orchestrator validation accepts when the child is a DB definition
#: (no decorated function with an LLM behind it): see core/validation.py upstream.
_ORCHESTRATOR_CHILD_TYPES = {"agent", "chain", "parallel", "router", "evaluator_optimizer"}


def find_cycle(specs: Mapping[str, AgentSpec]) -> list[str] | None:
    """A dependency cycle as a list of names that starts and ends with the same agent."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "visiting"
        path.append(name)
        spec = specs.get(name)
        for _role, _position, child in spec.links() if spec else []:
            if state.get(child) == "visiting":
                return [*path[path.index(child) :], child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        path.pop()
        state[name] = "done"
        return None

    for name in sorted(specs):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def closure(specs: Mapping[str, AgentSpec], roots: list[str]) -> dict[str, AgentSpec]:
    """The roots and every agent they depend on (children, transitively)."""
    selected: dict[str, AgentSpec] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in selected or name not in specs:
            continue
        selected[name] = specs[name]
        pending.extend(child for _role, _position, child in specs[name].links())
    return selected


def problems_of(
    specs: Mapping[str, AgentSpec],
    *,
    known_servers: set[str] | None,
    check_imports: bool = True,
) -> list[str]:
    problems: list[str] = []
    for name, spec in sorted(specs.items()):
        for role, position, child in spec.links():
            where = f"{name}.{role}" + (f"[{position}]" if role != "fan_in" else "")
            if child not in specs:
                problems.append(f"{where}: unknown agent {child!r}")
            elif (
                isinstance(spec, OrchestratorSpec)
                and specs[child].type not in _ORCHESTRATOR_CHILD_TYPES
            ):
                problems.append(
                    f"{where}: upstream's orchestrator cannot use a {specs[child].type} agent "
                    f"({child!r}) as a child"
                )
        if isinstance(spec, ChainSpec) and not spec.sequence:
            problems.append(f"{name}.sequence: a chain needs at least one agent")
        if isinstance(spec, ParallelSpec) and not spec.fan_out:
            problems.append(f"{name}.fan_out: a parallel workflow needs at least one agent")
        if isinstance(spec, RouterSpec | OrchestratorSpec) and not spec.agents:
            problems.append(f"{name}.agents: needs at least one agent")
        if known_servers is not None:
            for server in spec.server_names():
                if server not in known_servers:
                    problems.append(f"{name}.servers: unknown MCP server {server!r}")
        model = getattr(spec, "model", None)
        if model and not is_known_model(model):
            problems.append(f"{name}.model: unknown model {model!r}")
        if check_imports and isinstance(spec, CustomAgentSpec):
            try:
                load_agent_class(spec)
            except DefinitionError as error:
                problems.extend(error.problems)
    cycle = find_cycle(specs)
    if cycle:
        problems.append(f"dependency cycle: {' -> '.join(cycle)}")
    return problems


def validate(
    specs: Mapping[str, AgentSpec],
    *,
    known_servers: set[str] | None,
    check_imports: bool = True,
) -> None:
    """Raises DefinitionError listing every problem of `specs`."""
    problems = problems_of(specs, known_servers=known_servers, check_imports=check_imports)
    if problems:
        raise DefinitionError(problems)

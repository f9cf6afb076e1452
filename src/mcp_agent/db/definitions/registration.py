"""Between definitions and upstream's `FastAgent.agents`.

A spec is registered by calling upstream's own decorator functions, so a definition from the
database gets exactly what the same decorator in a script would give: upstream's default
instructions, its forced `servers=[]` for workflows, its checks. Capture goes the other way,
from what a decorator stored to a spec, so an unchanged script's agents can be recorded.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from enum import Enum
from typing import Any

from mcp_agent.core import direct_decorators
from mcp_agent.core.request_params import RequestParams

from mcp_agent.db.definitions.specs import (
    AGENT_SPEC,
    AgentSpec,
    BasicAgentSpec,
    ChainSpec,
    CustomAgentSpec,
    DefinitionError,
    EvaluatorOptimizerSpec,
    OrchestratorSpec,
    ParallelSpec,
    RouterSpec,
    script_bound_reason,
)


class _Registry:
    """The one attribute upstream's decorator functions use on `self`."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}


async def _definition_from_database() -> None:
    """Stands where a decorated function would: DB definitions have no function body."""


def import_dotted(path: str) -> type:
    """Import `package.module.Class` (nested attributes allowed)."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            break
        if isinstance(target, type):
            return target
        break
    raise ImportError(f"cannot import the agent class {path!r}")


def dotted_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def load_agent_class(spec: CustomAgentSpec, registered: Mapping[str, Any] | None = None) -> type:
    """The class of a custom agent definition.

    `registered` is what the running script's decorator registered under the same name, if
    anything: its class is used when it is the one the definition names, so a class only the
    script can provide (defined in a function, or in `__main__`) still loads from there.

    Raises:
        DefinitionError: the class cannot be imported; for a class bound to the script that
            defines it, the message says so.
    """
    if registered is not None and registered.get("type") == "custom":
        candidate = registered.get("agent_class")
        if isinstance(candidate, type) and dotted_path(candidate) == spec.agent_class:
            return candidate
    try:
        return import_dotted(spec.agent_class)
    except ImportError as error:
        reason = script_bound_reason(spec.agent_class)
        if reason is None:
            problem = f"{spec.name}.agent_class: {error}"
        else:
            problem = (
                f"{spec.name}.agent_class: {spec.agent_class!r} cannot be loaded without the "
                f"script that defines it ({reason}); run this agent from that script, or move "
                "the class to an importable module"
            )
        raise DefinitionError([problem]) from None


def register(
    agents: MutableMapping[str, dict[str, Any]],
    spec: AgentSpec,
    *,
    agent_class: type | str | None = None,
) -> None:
    """Register `spec` into a `FastAgent.agents`-shaped mapping via upstream's decorators.

    `agent_class` is the class of a custom agent (default: imported from its dotted path).
    Its dotted path itself may stand in for it where the registration never runs, as in
    `canonical`: then a class only its script can provide needs no import.
    """
    holder = _Registry()
    holder.agents = agents  # type: ignore[assignment]
    llm: dict[str, Any] = {}
    if isinstance(spec, BasicAgentSpec | CustomAgentSpec | RouterSpec | OrchestratorSpec):
        llm = {
            "model": spec.model,
            "use_history": spec.use_history,
            "human_input": spec.human_input,
            "request_params": RequestParams(**spec.request_params) if spec.request_params else None,
            "default": spec.default,
        }
    instruction = {"instruction": spec.instruction} if spec.instruction is not None else {}
    match spec:
        case BasicAgentSpec():
            decorator = direct_decorators.agent(
                holder, name=spec.name, servers=spec.servers, **instruction, **llm
            )
        case CustomAgentSpec():
            decorator = direct_decorators.custom(
                holder,
                agent_class if agent_class is not None else load_agent_class(spec),
                name=spec.name,
                servers=spec.servers,
                **instruction,
                **llm,
            )
        case RouterSpec():
            decorator = direct_decorators.router(
                holder,
                name=spec.name,
                agents=spec.agents,
                servers=spec.servers,
                **instruction,
                **llm,
            )
        case OrchestratorSpec():
            decorator = direct_decorators.orchestrator(
                holder,
                name=spec.name,
                agents=spec.agents,
                plan_type=spec.plan_type,
                plan_iterations=spec.plan_iterations,
                **instruction,
                **llm,
            )
        case ChainSpec():
            decorator = direct_decorators.chain(
                holder,
                name=spec.name,
                sequence=spec.sequence,
                cumulative=spec.cumulative,
                default=spec.default,
                **instruction,
            )
        case ParallelSpec():
            decorator = direct_decorators.parallel(
                holder,
                name=spec.name,
                fan_out=spec.fan_out,
                fan_in=spec.fan_in,
                include_request=spec.include_request,
                default=spec.default,
                **instruction,
            )
        case EvaluatorOptimizerSpec():
            decorator = direct_decorators.evaluator_optimizer(
                holder,
                name=spec.name,
                generator=spec.generator,
                evaluator=spec.evaluator,
                min_rating=spec.min_rating,
                max_refinements=spec.max_refinements,
                default=spec.default,
                **instruction,
            )
    decorator(_definition_from_database)


def _by_value(value: Any) -> Any:
    """`value` with enum members (e.g. upstream's `QualityRating.GOOD`) replaced by their
    values, in lists too: a definition holds what a member stands for, never the enum class
    (which a process loading the definition may not have).

    `_value_`, not `.value`: upstream's QualityRating overrides `.value` to return a rank.
    """
    if isinstance(value, Enum):
        return value._value_
    if isinstance(value, list | tuple):
        return [_by_value(item) for item in value]
    return value


def capture(name: str, entry: dict[str, Any]) -> AgentSpec:
    """The spec of one `FastAgent.agents` entry, as a decorator stored it."""
    config = entry["config"]
    agent_type = entry["type"]
    # Workflow fields are kept as the decorator was given them (AgentConfig's are validated
    # into plain values): an enum member must become its value here.
    given = {key: _by_value(value) for key, value in entry.items()}
    common: dict[str, Any] = {
        "name": _by_value(name),
        "type": agent_type,
        "instruction": config.instruction,
        "default": config.default,
    }
    llm: dict[str, Any] = {
        "model": config.model,
        "use_history": config.use_history,
        "human_input": config.human_input,
        "request_params": _explicit_request_params(config),
    }
    if agent_type == "agent":
        values = {**common, **llm, "servers": list(config.servers)}
    elif agent_type == "custom":
        values = {
            **common,
            **llm,
            "servers": list(config.servers),
            "agent_class": _agent_class_path(given["agent_class"]),
        }
    elif agent_type == "router":
        values = {
            **common,
            **llm,
            "servers": list(config.servers),
            "agents": given["router_agents"],
        }
    elif agent_type == "orchestrator":
        values = {
            **common,
            **llm,
            "agents": given["child_agents"],
            "plan_type": given.get("plan_type", "full"),
            "plan_iterations": given.get("plan_iterations", 5),
        }
    elif agent_type == "chain":
        values = {
            **common,
            "sequence": given["sequence"],
            "cumulative": given.get("cumulative", False),
        }
    elif agent_type == "parallel":
        values = {
            **common,
            "fan_out": given["fan_out"],
            "fan_in": given.get("fan_in"),
            "include_request": given.get("include_request", True),
        }
    elif agent_type == "evaluator_optimizer":
        values = {
            **common,
            "generator": given["generator"],
            "evaluator": given["evaluator"],
            "min_rating": given.get("min_rating", "GOOD"),
            "max_refinements": given.get("max_refinements", 3),
        }
    else:
        raise DefinitionError([f"{name}: unknown agent type {agent_type!r}"])
    return AGENT_SPEC.validate_python(values)


def _agent_class_path(agent_class: type | str) -> str:
    """A decorator's class, or the dotted path `canonical` registered in its place."""
    return agent_class if isinstance(agent_class, str) else dotted_path(agent_class)


def _explicit_request_params(config: Any) -> dict[str, Any] | None:
    """Request params the user gave, or None when they are the ones AgentConfig derives."""
    params = config.default_request_params
    if params is None:
        return None
    given = params.model_dump(mode="json", exclude_unset=True)
    derived = {"use_history": config.use_history, "systemPrompt": config.instruction}
    return None if given == derived else given


def canonical(spec: AgentSpec) -> AgentSpec:
    """The spec with upstream's defaults made explicit: what a stored version holds.

    A custom agent's class is not imported: its dotted path is kept as it is, and whether it
    imports is validation's question (`check_imports`), not canonicalisation's.
    """
    agents: dict[str, dict[str, Any]] = {}
    agent_class = spec.agent_class if isinstance(spec, CustomAgentSpec) else None
    try:
        register(agents, spec, agent_class=agent_class)
    except DefinitionError:
        raise
    except Exception as error:  # upstream's own checks, e.g. an empty chain
        raise DefinitionError(
            [f"{spec.name}: {getattr(error, 'message', None) or error}"]
        ) from None
    return capture(spec.name, agents[spec.name])

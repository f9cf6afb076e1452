"""Between definitions and upstream's `FastAgent.agents`.

A spec is registered by calling upstream's own decorator functions, so a definition from the
database gets exactly what the same decorator in a script would give: upstream's default
instructions, its forced `servers=[]` for workflows, its checks. Capture goes the other way,
from what a decorator stored to a spec, so an unchanged script's agents can be recorded.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
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


def register(agents: MutableMapping[str, dict[str, Any]], spec: AgentSpec) -> None:
    """Register `spec` into a `FastAgent.agents`-shaped mapping via upstream's decorators."""
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
            try:
                agent_class = import_dotted(spec.agent_class)
            except ImportError as error:
                raise DefinitionError([f"{spec.name}.agent_class: {error}"]) from None
            decorator = direct_decorators.custom(
                holder, agent_class, name=spec.name, servers=spec.servers, **instruction, **llm
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


def capture(name: str, entry: dict[str, Any]) -> AgentSpec:
    """The spec of one `FastAgent.agents` entry, as a decorator stored it."""
    config = entry["config"]
    agent_type = entry["type"]
    common: dict[str, Any] = {
        "name": name,
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
            "agent_class": dotted_path(entry["agent_class"]),
        }
    elif agent_type == "router":
        values = {
            **common,
            **llm,
            "servers": list(config.servers),
            "agents": entry["router_agents"],
        }
    elif agent_type == "orchestrator":
        values = {
            **common,
            **llm,
            "agents": entry["child_agents"],
            "plan_type": entry.get("plan_type", "full"),
            "plan_iterations": entry.get("plan_iterations", 5),
        }
    elif agent_type == "chain":
        values = {
            **common,
            "sequence": entry["sequence"],
            "cumulative": entry.get("cumulative", False),
        }
    elif agent_type == "parallel":
        values = {
            **common,
            "fan_out": entry["fan_out"],
            "fan_in": entry.get("fan_in"),
            "include_request": entry.get("include_request", True),
        }
    elif agent_type == "evaluator_optimizer":
        values = {
            **common,
            "generator": entry["generator"],
            "evaluator": entry["evaluator"],
            "min_rating": str(entry.get("min_rating", "GOOD")),
            "max_refinements": entry.get("max_refinements", 3),
        }
    else:
        raise DefinitionError([f"{name}: unknown agent type {agent_type!r}"])
    return AGENT_SPEC.validate_python(values)


def _explicit_request_params(config: Any) -> dict[str, Any] | None:
    """Request params the user gave, or None when they are the ones AgentConfig derives."""
    params = config.default_request_params
    if params is None:
        return None
    given = params.model_dump(mode="json", exclude_unset=True)
    derived = {"use_history": config.use_history, "systemPrompt": config.instruction}
    return None if given == derived else given


def canonical(spec: AgentSpec) -> AgentSpec:
    """The spec with upstream's defaults made explicit: what a stored version holds."""
    agents: dict[str, dict[str, Any]] = {}
    try:
        register(agents, spec)
    except DefinitionError:
        raise
    except Exception as error:  # upstream's own checks, e.g. an empty chain
        raise DefinitionError(
            [f"{spec.name}: {getattr(error, 'message', None) or error}"]
        ) from None
    return capture(spec.name, agents[spec.name])

"""Agent and workflow definitions as domain objects: one spec type per upstream agent type.

Field names follow upstream's decorator arguments (`agents`, `sequence`, `fan_out`, ...), so a
YAML bundle reads like the decorators it replaces. Stored specs are canonical: every value is
explicit, upstream's defaults included (see `registration.canonical`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from mcp_agent.db.errors import DefinitionError  # noqa: F401 - defined in errors, imported from here too


class _SpecBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    #: None means upstream's default instruction for the type.
    instruction: str | None = None
    default: bool = False

    def links(self) -> list[tuple[str, int, str]]:
        """(role, position, child agent name) for each child of a workflow."""
        return []

    def server_names(self) -> list[str]:
        return []


class _LlmSpec(_SpecBase):
    """Types that own an LLM: model, request parameters and human input apply."""

    model: str | None = None
    #: upstream RequestParams fields given explicitly (JSON).
    request_params: dict[str, Any] | None = None
    human_input: bool = False


class BasicAgentSpec(_LlmSpec):
    type: Literal["agent"] = "agent"
    servers: list[str] = Field(default_factory=list)
    use_history: bool = True

    def server_names(self) -> list[str]:
        return list(self.servers)


#: Module name `agents import` runs a script under (so its main does not fire): classes
#: defined in the script get it as their module, and it cannot be imported afterwards.
SCRIPT_IMPORT_MODULE = "fast_agent_db_import"


def script_bound_reason(agent_class: str) -> str | None:
    """Why the class at dotted path `agent_class` cannot be imported without the script that
    defines it, or None when the path is an ordinary importable one."""
    parts = agent_class.split(".")
    if "<locals>" in parts:
        return "it is defined inside a function"
    if parts[0] == "__main__":
        return "it is defined in a script run as __main__"
    if parts[0] == SCRIPT_IMPORT_MODULE:
        return "it is defined in a script read by `agents import`"
    return None


class CustomAgentSpec(_LlmSpec):
    type: Literal["custom"] = "custom"
    #: Dotted path of the agent class, e.g. `my_package.agents.MyAgent`.
    agent_class: str
    servers: list[str] = Field(default_factory=list)
    use_history: bool = True
    #: True when the class lives only in the script that registered it (inside a function,
    #: or in `__main__`): such a definition runs from that script and nowhere else.
    #: Derived from `agent_class`; a value given for it is replaced.
    requires_script: bool = False

    @model_validator(mode="after")
    def _derive_requires_script(self) -> Self:
        self.requires_script = script_bound_reason(self.agent_class) is not None
        return self

    def server_names(self) -> list[str]:
        return list(self.servers)


class RouterSpec(_LlmSpec):
    type: Literal["router"] = "router"
    agents: list[str]
    servers: list[str] = Field(default_factory=list)
    use_history: bool = False

    def links(self) -> list[tuple[str, int, str]]:
        return [("router_target", i, name) for i, name in enumerate(self.agents)]

    def server_names(self) -> list[str]:
        return list(self.servers)


class OrchestratorSpec(_LlmSpec):
    type: Literal["orchestrator"] = "orchestrator"
    agents: list[str]
    use_history: bool = False
    plan_type: Literal["full", "iterative"] = "full"
    plan_iterations: int = Field(default=5, gt=0)

    def links(self) -> list[tuple[str, int, str]]:
        return [("orchestrated", i, name) for i, name in enumerate(self.agents)]


class ChainSpec(_SpecBase):
    type: Literal["chain"] = "chain"
    sequence: list[str]
    cumulative: bool = False

    def links(self) -> list[tuple[str, int, str]]:
        return [("sequence", i, name) for i, name in enumerate(self.sequence)]


class ParallelSpec(_SpecBase):
    type: Literal["parallel"] = "parallel"
    fan_out: list[str]
    fan_in: str | None = None
    include_request: bool = True

    def links(self) -> list[tuple[str, int, str]]:
        links = [("fan_out", i, name) for i, name in enumerate(self.fan_out)]
        if self.fan_in is not None:
            links.append(("fan_in", 0, self.fan_in))
        return links


class EvaluatorOptimizerSpec(_SpecBase):
    type: Literal["evaluator_optimizer"] = "evaluator_optimizer"
    generator: str
    evaluator: str
    min_rating: Literal["POOR", "FAIR", "GOOD", "EXCELLENT"] = "GOOD"
    max_refinements: int = Field(default=3, ge=0)

    def links(self) -> list[tuple[str, int, str]]:
        return [("generator", 0, self.generator), ("evaluator", 0, self.evaluator)]


AgentSpec = Annotated[
    BasicAgentSpec
    | CustomAgentSpec
    | RouterSpec
    | OrchestratorSpec
    | ChainSpec
    | ParallelSpec
    | EvaluatorOptimizerSpec,
    Field(discriminator="type"),
]
SPEC_TYPES: dict[str, type[_SpecBase]] = {
    spec_class.model_fields["type"].default: spec_class
    for spec_class in (
        BasicAgentSpec,
        CustomAgentSpec,
        RouterSpec,
        OrchestratorSpec,
        ChainSpec,
        ParallelSpec,
        EvaluatorOptimizerSpec,
    )
}
AGENT_SPEC = TypeAdapter(AgentSpec)
AGENT_SPECS = TypeAdapter(list[AgentSpec])


#: Spec fields computed from other fields. They add nothing to a hash, and leaving them out
#: keeps the hashes of versions stored before the fields existed (no spurious new versions).
_DERIVED_FIELDS = {"requires_script"}


def content_hash(spec: BaseModel) -> str:
    """SHA-256 of the canonical JSON of a spec: equal definitions, equal hashes."""
    document = spec.model_dump(mode="json", exclude=_DERIVED_FIELDS)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AgentDefinition(BaseModel):
    """One stored version of an agent's definition."""

    model_config = ConfigDict(frozen=True)

    spec: AgentSpec
    version: int
    agent_version_id: int | None = None
    content_hash: str
    created_at: datetime
    source: str | None = None
    created_by: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


class PutResult(BaseModel):
    name: str
    version: int
    #: created | updated | unchanged
    outcome: Literal["created", "updated", "unchanged"]

"""Enum members given to upstream's decorators are stored by value and come back as values
upstream accepts, through every definition store (the conformance suite's backends).

Any decorator argument that takes a string or an integer takes a member of a `str`/`int`
enum as well (upstream's own `QualityRating` for `min_rating`, or a script's own enums for
names, models, servers, ...). Whatever a script gave, loading its definitions must register
entries equal to the ones its decorators produced.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_agent.agents.workflow.evaluator_optimizer import QualityRating
from mcp_agent.core import direct_decorators
from mcp_agent.core.request_params import RequestParams
from mcp_agent.core.validation import get_dependencies_groups, validate_workflow_references

from mcp_agent.db.definitions.base import DefinitionStore
from mcp_agent.db.definitions.loader import captured_specs, register_definitions
from mcp_agent.db.settings import edits
from tests.conformance.stores import Stores
from tests.support.custom_agents import ShoutingAgent


class SubjectName(StrEnum):
    """The agent each decorator under test defines, named after the decorator."""

    AGENT = "agent_subject"
    CUSTOM = "custom_subject"
    CHAIN = "chain_subject"
    PARALLEL = "parallel_subject"
    ROUTER = "router_subject"
    ORCHESTRATOR = "orchestrator_subject"
    EVALUATOR_OPTIMIZER = "evaluator_optimizer_subject"


class ChildName(StrEnum):
    """Plain agents the workflows refer to."""

    WRITER = "writer"
    CRITIC = "critic"


class Instruction(StrEnum):
    TERSE = "Be terse."
    THOROUGH = "Be thorough."


class ModelName(StrEnum):
    PASSTHROUGH = "passthrough"
    PLAYBACK = "playback"


class ServerName(StrEnum):
    CALC = "calc"
    NOTES = "notes"


class PlanType(StrEnum):
    FULL = "full"
    ITERATIVE = "iterative"


class Count(IntEnum):
    ONE = 1
    THREE = 3


@dataclass(frozen=True)
class EnumField:
    enum: type[Enum]
    #: The argument is a list of members (sequence, fan_out, servers, ...).
    is_list: bool = False


_LLM_FIELDS = {
    "instruction": EnumField(Instruction),
    "model": EnumField(ModelName),
    "servers": EnumField(ServerName, is_list=True),
}
#: Decorator -> every argument that can take an enum member (besides `name`), and its enum.
ENUM_FIELDS: dict[str, dict[str, EnumField]] = {
    "agent": _LLM_FIELDS,
    "custom": _LLM_FIELDS,
    "chain": {
        "instruction": EnumField(Instruction),
        "sequence": EnumField(ChildName, is_list=True),
    },
    "parallel": {
        "instruction": EnumField(Instruction),
        "fan_out": EnumField(ChildName, is_list=True),
        "fan_in": EnumField(ChildName),
    },
    "router": {**_LLM_FIELDS, "agents": EnumField(ChildName, is_list=True)},
    "orchestrator": {
        "instruction": EnumField(Instruction),
        "model": EnumField(ModelName),
        "agents": EnumField(ChildName, is_list=True),
        "plan_type": EnumField(PlanType),
        "plan_iterations": EnumField(Count),
    },
    "evaluator_optimizer": {
        "instruction": EnumField(Instruction),
        "generator": EnumField(ChildName),
        "evaluator": EnumField(ChildName),
        "min_rating": EnumField(QualityRating),
        "max_refinements": EnumField(Count),
    },
}
#: decorator -> argument -> value (an enum member, its value, or a list of those).
Assignment = dict[str, dict[str, Any]]


def test_the_table_covers_every_decorator_argument_that_can_take_an_enum() -> None:
    for decorator, fields in ENUM_FIELDS.items():
        hints = typing.get_type_hints(getattr(direct_decorators, decorator))
        parameters = inspect.signature(getattr(direct_decorators, decorator)).parameters
        can_take_enums = {
            name
            for name in parameters
            # self and custom's class are unannotated; bools and RequestParams hold no enum;
            # instruction_or_kwarg is `instruction` given positionally (the same field).
            if name in hints
            and hints[name] is not bool
            and RequestParams not in typing.get_args(hints[name])
            and name not in ("name", "instruction_or_kwarg")
        }
        assert can_take_enums == set(fields), decorator


def _subject(decorator: str) -> SubjectName:
    return SubjectName[decorator.upper()]


def _member_or_value(enum: type[Enum]) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(enum)).flatmap(
        lambda member: st.sampled_from([member, member._value_])
    )


def _field_values(field: EnumField) -> st.SearchStrategy[Any]:
    if field.is_list:
        return st.lists(_member_or_value(field.enum), min_size=1, max_size=3)
    return _member_or_value(field.enum)


assignments: st.SearchStrategy[Assignment] = st.fixed_dictionaries(
    {
        decorator: st.fixed_dictionaries(
            {
                "name": st.sampled_from([_subject(decorator), _subject(decorator).value]),
                **{name: _field_values(field) for name, field in fields.items()},
            }
        )
        for decorator, fields in ENUM_FIELDS.items()
    }
)


def every_member_assignments() -> list[Assignment]:
    """Assignments that, between them, give every argument every member of its enum."""
    longest = max(len(f.enum) for fields in ENUM_FIELDS.values() for f in fields.values())
    result: list[Assignment] = []
    for index in range(longest):
        assignment: Assignment = {}
        for decorator, fields in ENUM_FIELDS.items():
            values: dict[str, Any] = {"name": _subject(decorator)}
            for name, field in fields.items():
                members = list(field.enum)
                rotated = members[index % len(members) :] + members[: index % len(members)]
                values[name] = rotated if field.is_list else rotated[0]
            assignment[decorator] = values
        result.append(assignment)
    return result


class _App:
    """Stands for a FastAgent: the one attribute upstream's decorators use."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}


async def _workflow_body() -> None: ...


def decorate(assignment: Assignment) -> dict[str, dict[str, Any]]:
    """What upstream's decorators register for `assignment`, as a script would call them."""
    app = _App()
    for child in ChildName:
        direct_decorators.agent(app, name=child.value, model="passthrough")(_workflow_body)
    for decorator, values in assignment.items():
        positional = (ShoutingAgent,) if decorator == "custom" else ()
        getattr(direct_decorators, decorator)(app, *positional, **values)(_workflow_body)
    return app.agents


def _without_function(entry: dict[str, Any]) -> dict[str, Any]:
    # A definition from the database has no function body of its own.
    return {key: value for key, value in entry.items() if key != "func"}


def _holds_an_enum(value: Any) -> bool:
    if isinstance(value, list):
        return any(_holds_an_enum(item) for item in value)
    return isinstance(value, Enum)


async def assert_round_trip(store: DefinitionStore, assignment: Assignment) -> None:
    original = decorate(assignment)
    await store.put(captured_specs(original), source="decorator")
    registered: dict[str, dict[str, Any]] = {}
    register_definitions(
        registered,
        await store.current(),
        [subject.value for subject in SubjectName],
        known_servers={server.value for server in ServerName},
    )
    for subject in SubjectName:
        before, after = original[subject], registered[subject]
        assert _without_function(after) == _without_function(before), (subject, assignment)
        # By value: loading needs none of the script's enum classes.
        extras = {key: value for key, value in after.items() if key not in ("config", "func")}
        assert not any(_holds_an_enum(value) for value in extras.values()), extras
    # As upstream's run and factory take them.
    validate_workflow_references(registered)
    get_dependencies_groups(registered)
    min_rating = original[SubjectName.EVALUATOR_OPTIMIZER]["min_rating"]
    loaded = registered[SubjectName.EVALUATOR_OPTIMIZER]["min_rating"]
    assert QualityRating(loaded) is QualityRating(min_rating)
    assert registered[SubjectName.ORCHESTRATOR]["plan_type"] in ("full", "iterative")


@pytest.fixture
async def store(stores: Stores) -> DefinitionStore:
    for server in ServerName:
        await stores.settings.update(
            lambda document, server=server: edits.add_server(
                document, server.value, {"command": "python"}
            )
        )
    return stores.definitions


async def test_enum_members_round_trip_by_value_through_the_store(store: DefinitionStore) -> None:
    drawn: list[Assignment] = []

    # Hypothesis drives a sync function; each drawn assignment then goes through the store.
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(assignments)
    def draw(assignment: Assignment) -> None:
        drawn.append(assignment)

    draw()
    # Always, not only when hypothesis happens to draw them: every member of every enum.
    for assignment in [*every_member_assignments(), *drawn]:
        await assert_round_trip(store, assignment)


async def test_quality_rating_is_stored_as_its_name_not_its_repr(store: DefinitionStore) -> None:
    for rating in QualityRating:
        assignment = every_member_assignments()[0]
        assignment["evaluator_optimizer"]["min_rating"] = rating
        await store.put(captured_specs(decorate(assignment)), source="decorator")
        stored = (await store.get(SubjectName.EVALUATOR_OPTIMIZER.value)).spec
        assert stored.min_rating == rating._value_

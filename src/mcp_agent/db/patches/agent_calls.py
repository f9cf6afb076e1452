"""Wrapping each running agent's `generate` and `structured` (upstream's `send` goes through
`generate`), as instance attributes: upstream's classes stay untouched, and uninstalling
deletes the attributes so the class methods show through again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: The agent calls a run records.
OPERATIONS = ("generate", "structured")

AgentCall = Callable[..., Awaitable[Any]]
#: (agent name, agent, operation, upstream's bound method) -> the method to use instead
CallWrapper = Callable[[str, Any, str, AgentCall], AgentCall]


def install(agents: Mapping[str, Any], wrap: CallWrapper) -> None:
    for name, agent in agents.items():
        for operation in OPERATIONS:
            setattr(agent, operation, wrap(name, agent, operation, getattr(agent, operation)))


def uninstall(agents: Mapping[str, Any]) -> None:
    for agent in agents.values():
        for operation in OPERATIONS:
            vars(agent).pop(operation, None)

"""What a put or rollback will write: shared by every definition store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp_agent.db.definitions.registration import canonical
from mcp_agent.db.definitions.specs import AgentSpec, DefinitionError, PutResult, content_hash
from mcp_agent.db.definitions.validation import closure, validate

if TYPE_CHECKING:
    from mcp_agent.db.definitions.base import DefinitionStore


@dataclass(frozen=True, slots=True)
class PreparedSpec:
    spec: AgentSpec
    content_hash: str
    #: None: the agent is new; else the hash of its current version.
    current_hash: str | None

    @property
    def changed(self) -> bool:
        return self.content_hash != self.current_hash


def prepare_upsert(
    current: Mapping[str, tuple[AgentSpec, str]],
    specs: Sequence[AgentSpec],
    *,
    known_servers: set[str] | None,
    check_imports: bool,
) -> list[PreparedSpec]:
    """Canonicalise and validate `specs` against the stored `current` (name -> spec, hash).

    Raises:
        DefinitionError: duplicates in the input, or any problem of the new definitions
            together with the stored agents they refer to.
    """
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DefinitionError([f"{name}: defined more than once" for name in duplicates])
    problems: list[str] = []
    canonical_specs: list[AgentSpec] = []
    for spec in specs:
        try:
            canonical_specs.append(canonical(spec))
        except DefinitionError as error:
            problems.extend(error.problems)
    if problems:
        raise DefinitionError(problems)
    merged: dict[str, AgentSpec] = {name: spec for name, (spec, _hash) in current.items()}
    merged.update({spec.name: spec for spec in canonical_specs})
    validate(
        closure(merged, [spec.name for spec in canonical_specs]),
        known_servers=known_servers,
        check_imports=check_imports,
    )
    return [
        PreparedSpec(
            spec=spec,
            content_hash=content_hash(spec),
            current_hash=current[spec.name][1] if spec.name in current else None,
        )
        for spec in canonical_specs
    ]


def referrers(current: Mapping[str, AgentSpec], name: str) -> list[str]:
    """Live agents whose current definition refers to `name`."""
    return sorted(
        other
        for other, spec in current.items()
        if other != name and any(child == name for _r, _p, child in spec.links())
    )


async def rollback(
    store: DefinitionStore, name: str, version: int, *, created_by: str | None
) -> PutResult:
    """Store a copy of `version` as the newest version (history is never rewritten)."""
    old = await store.get(name, version)
    # The version was accepted when stored; a custom class that only its script provides
    # (a decorator-recorded definition) must not make it impossible to restore.
    (result,) = await store.put(
        [old.spec], source="rollback", created_by=created_by, check_imports=False
    )
    return result

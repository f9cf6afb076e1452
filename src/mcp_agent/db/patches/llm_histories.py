"""Reading and writing the two histories upstream keeps per LLM (see UPSTREAM_SYNC.md).

`_message_history` is the provider-agnostic transcript (`PromptMessageMultipart`s); `history`
is a `SimpleMemory` of provider-native messages. Only an agent with an attached LLM has them
(workflow agents have none). This module is the one place that touches those attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HistorySnapshot:
    """The two histories as they were, kept by reference and length, not copied.

    Taken before every call, so copying (O(history) per turn) is what it avoids. Upstream only
    appends to these lists, or replaces them with new lists (`SimpleMemory.set`/`clear`, a
    restore): the list objects held here keep their first `length` items either way, and
    those are the histories as they were.
    """

    transcript_list: list[Any]
    transcript_length: int
    provider_list: list[Any]
    provider_length: int

    @property
    def transcript(self) -> list[Any]:
        return self.transcript_list[: self.transcript_length]

    @property
    def provider(self) -> list[Any]:
        return self.provider_list[: self.provider_length]


def llm_of(agent: Any) -> Any | None:
    return getattr(agent, "_llm", None)


def snapshot(agent: Any) -> HistorySnapshot | None:
    """Copies of the agent's two histories, or None for an agent without an LLM."""
    llm = llm_of(agent)
    if llm is None:
        return None
    transcript, provider = llm._message_history, llm.history.history
    return HistorySnapshot(transcript, len(transcript), provider, len(provider))


def replace(agent: Any, transcript: list[Any], provider: list[Any]) -> bool:
    """Set both histories; False (nothing done) for an agent without an LLM."""
    llm = llm_of(agent)
    if llm is None:
        return False
    llm._message_history = list(transcript)
    llm.history.set(list(provider))
    return True


def added_since(agent: Any, before: HistorySnapshot) -> HistorySnapshot:
    """What the histories gained after `before` was taken."""
    llm = llm_of(agent)
    if llm is None:
        return HistorySnapshot([], 0, [], 0)
    transcript = llm._message_history[before.transcript_length :]
    provider = llm.history.history[before.provider_length :]
    return HistorySnapshot(transcript, len(transcript), provider, len(provider))


def provider_and_model(agent: Any) -> tuple[str | None, str | None]:
    llm = llm_of(agent)
    provider = getattr(getattr(llm, "provider", None), "value", None)
    model = getattr(getattr(llm, "default_request_params", None), "model", None)
    return provider, model

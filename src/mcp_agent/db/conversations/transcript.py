"""The tool calls and results of a stored message, read from the provider's own messages.

Upstream 0.2.36's `PromptMessageMultipart` holds only what the user and the model said; the
tool calls a turn made live in the provider-format messages stored beside it
(`StoredMessage.provider_messages`): OpenAI's `tool_calls` and `role: tool` messages,
Anthropic's `tool_use` and `tool_result` blocks. Transcripts (`sessions show`, the API) show
them from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """One tool call the model made, or the result it was given."""

    kind: Literal["call", "result"]
    #: The tool's name (a call), or None when the format does not repeat it on a result.
    tool_name: str | None
    #: The provider's id pairing a call with its result.
    call_id: str | None
    #: A call's arguments as JSON text; a result's text.
    text: str
    is_error: bool = False


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text of its blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            _text_of(block.get("text") if block.get("type") == "text" else block.get("content"))
            for block in content
            if isinstance(block, dict)
        ).strip()
    return ""


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True)


def _openai(message: dict[str, Any]) -> list[ToolActivity]:
    found = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        found.append(
            ToolActivity(
                kind="call",
                tool_name=function.get("name"),
                call_id=call.get("id"),
                text=_arguments_text(function.get("arguments") or "{}"),
            )
        )
    if message.get("role") == "tool":
        found.append(
            ToolActivity(
                kind="result",
                tool_name=message.get("name"),
                call_id=message.get("tool_call_id"),
                text=_text_of(message.get("content")),
            )
        )
    return found


def _anthropic_blocks(blocks: list[Any]) -> list[ToolActivity]:
    found = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use":
            found.append(
                ToolActivity(
                    kind="call",
                    tool_name=block.get("name"),
                    call_id=block.get("id"),
                    text=_arguments_text(block.get("input") or {}),
                )
            )
        elif block.get("type") == "tool_result":
            found.append(
                ToolActivity(
                    kind="result",
                    tool_name=None,
                    call_id=block.get("tool_use_id"),
                    text=_text_of(block.get("content")),
                    is_error=bool(block.get("is_error")),
                )
            )
    return found


def tool_activity(provider_messages: list[Any] | None) -> list[ToolActivity]:
    """The tool calls and results in `provider_messages`, in order, with result names filled
    in from their calls. Messages of other shapes are skipped: this is for showing, and a
    format it does not know shows no tool activity rather than failing."""
    found: list[ToolActivity] = []
    for message in provider_messages or []:
        # Stored SDK objects (OpenAI's ChatCompletionMessage) come back as those objects.
        model_dump = getattr(message, "model_dump", None)
        if callable(model_dump):
            message = model_dump(mode="json")
        if not isinstance(message, dict):
            continue
        found.extend(_openai(message))
        if isinstance(message.get("content"), list):
            found.extend(_anthropic_blocks(message["content"]))
    names = {entry.call_id: entry.tool_name for entry in found if entry.kind == "call"}
    return [
        entry
        if entry.tool_name is not None or entry.call_id not in names
        else ToolActivity(
            kind=entry.kind,
            tool_name=names[entry.call_id],
            call_id=entry.call_id,
            text=entry.text,
            is_error=entry.is_error,
        )
        for entry in found
    ]

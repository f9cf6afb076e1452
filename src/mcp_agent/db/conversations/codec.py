"""JSON forms of the two histories an upstream LLM keeps.

* The provider-agnostic transcript (`PromptMessageMultipart`) round-trips through pydantic with
  `by_alias=True` (without it, `_meta` comes back as an extra field and equality fails).
* The provider-native history mixes plain dicts with SDK objects (the OpenAI provider appends
  `ChatCompletionMessage` models, the Anthropic one content-block models). Objects are stored
  with their class name and rebuilt on load, so the SDK serialises the next request exactly as
  the first process would have. Only classes of the provider SDKs are rebuilt: a row names a
  class, and we will not import arbitrary names from the database.
* Anthropic `cache_control` markers are dropped: they mark positions of the previous process's
  prompt cache, and stale ones can exceed Anthropic's four-marker limit.
* Some Python strings have no UTF-8 form: PostgreSQL cannot store U+0000 in JSONB or text, and
  neither backend stores a lone surrogate (U+D800-U+DFFF: what `sys.argv` holds for bytes that
  are not UTF-8, among others). Every string is stored with those escaped reversibly
  (`escape_unstorable`), on both backends alike, so the exact string comes back.
* Rows written before surrogates were escaped hold them as JSON `\\udXXX` escapes (SQLite
  only: PostgreSQL refused them), which pydantic's JSON parser rejects; they are still read.
"""

from __future__ import annotations

import importlib
import json
import re
import types
from functools import cache
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart


@cache
def _multipart_class() -> type[PromptMessageMultipart]:
    # Imported on first decode: upstream's message types (all of mcp.types) cost more
    # start-up time than an admin command that never decodes a message takes in all.
    from mcp_agent.mcp.prompt_message_multipart import PromptMessageMultipart

    return PromptMessageMultipart


_TYPE_KEY = "__fast_agent_db_type__"
# NUL is stored as ESCAPE + "0", a surrogate as ESCAPE + "u" + its four hex digits, and ESCAPE
# itself as ESCAPE + ESCAPE: a private-use character, so text without any of them (nearly all
# text) is stored unchanged.
_ESCAPE = "\ue000"
_NUL = "\x00"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff\ue000]")
_ESCAPED = re.compile("\ue000(?:u([0-9a-f]{4})|(.))", re.DOTALL)


def _escaped(match: re.Match[str]) -> str:
    character = match.group()
    if character == _NUL:
        return _ESCAPE + "0"
    if character == _ESCAPE:
        return _ESCAPE + _ESCAPE
    return f"{_ESCAPE}u{ord(character):04x}"


def _unescaped(match: re.Match[str]) -> str:
    code, following = match.groups()
    if code is not None:
        return chr(int(code, 16))
    return _NUL if following == "0" else following


def _stored_as_is(text: str) -> bool:
    # isascii() reads a flag, and encoding is the quickest scan for surrogates there is (a
    # regular expression takes ten times as long): this runs for every string stored.
    if text.isascii():
        return _NUL not in text
    if _NUL in text or _ESCAPE in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escape_unstorable(value: Any) -> Any:
    """JSON-shaped `value` with every string made storable on both backends, reversibly."""
    if isinstance(value, str):
        return value if _stored_as_is(value) else _UNSTORABLE.sub(_escaped, value)
    if isinstance(value, dict):
        return {escape_unstorable(key): escape_unstorable(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [escape_unstorable(entry) for entry in value]
    return value


def unescape_unstorable(value: Any) -> Any:
    """The inverse of `escape_unstorable`."""
    if isinstance(value, str):
        if _ESCAPE not in value:
            return value
        return _ESCAPED.sub(_unescaped, value)
    if isinstance(value, dict):
        return {
            unescape_unstorable(key): unescape_unstorable(entry) for key, entry in value.items()
        }
    if isinstance(value, list):
        return [unescape_unstorable(entry) for entry in value]
    return value


#: The names these had when they escaped NUL alone (the event capture imports this one).
escape_nul = escape_unstorable

_VALUE_KEY = "value"
_REBUILDABLE_MODULES = ("openai.", "anthropic.", "google.genai.", "mcp.")


def encode_multipart(message: PromptMessageMultipart) -> dict[str, Any]:
    return escape_unstorable(message.model_dump(mode="json", by_alias=True, exclude_none=True))


def decode_multipart(data: dict[str, Any]) -> PromptMessageMultipart:
    return _multipart_class().model_validate(unescape_unstorable(data))


# How ESCAPE can appear in stored JSON text: literally (PostgreSQL's jsonb output) or as a
# \u escape (Python's json.dumps, which SQLite's JSON column uses).
_ESCAPE_JSON, _ESCAPE_JSON_UPPER = "\\ue000", "\\uE000"


def _may_hold_escape(text: str) -> bool:
    # Three scans, not any() over a tuple: this runs for every column of every loaded row.
    return _ESCAPE in text or _ESCAPE_JSON in text or _ESCAPE_JSON_UPPER in text


def decode_multipart_json(text: str) -> PromptMessageMultipart:
    """`decode_multipart` from the stored JSON text.

    The fast path hands the text straight to pydantic's JSON parser (no Python dicts in
    between): loading a long session is dominated by this call.
    """
    if _may_hold_escape(text):
        return decode_multipart(json.loads(text))
    try:
        return _multipart_class().model_validate_json(text)
    except ValidationError as error:
        if not any(detail["type"] == "json_invalid" for detail in error.errors()):
            raise
    # Only a row written before surrogates were escaped gets here (see the module's notes):
    # Python's JSON parser accepts its `\udXXX` escapes and gives back the string as it was.
    return decode_multipart(json.loads(text))


#: Joins the stored JSON texts of a history's messages into one document (see
#: `decode_multipart_records`): a control character, which JSON text never holds unescaped.
RECORD_SEPARATOR = "\x1e"


def decode_multipart_records(text: str) -> list[PromptMessageMultipart]:
    """`decode_multipart_json` of each stored message text in `text`, joined with
    RECORD_SEPARATOR (one document for a whole history, as the database aggregates it).

    Each text goes to pydantic's JSON parser on its own: one JSON array of a long history is
    parsed into a tree as large as the history before pydantic validates it, which is slower
    than the same work a message at a time. The escape check runs once over the document.
    Any message the fast path refuses is decoded again, and any error raised, as
    `decode_multipart_json` does.
    """
    texts = text.split(RECORD_SEPARATOR)
    if not _may_hold_escape(text):
        try:
            return _validated_each(texts)
        except ValidationError:
            pass  # a row written before surrogates were escaped, or one that is invalid
    return [decode_multipart_json(one) for one in texts]


def _validated_each(texts: list[str]) -> list[PromptMessageMultipart]:
    tagged = _tagged_multipart_class()
    if tagged is None:
        validate = _multipart_class().__pydantic_validator__.validate_json
        return [validate(one) for one in texts]
    validate = tagged.__pydantic_validator__.validate_json
    return _retyped([validate(one) for one in texts], _multipart_class())


def _retyped(objects: list[Any], cls: type) -> list[Any]:
    set_attribute = object.__setattr__
    for one in objects:
        set_attribute(one, "__class__", cls)
    return objects


def _state(model: BaseModel) -> tuple[Any, ...]:
    return (
        type(model),
        model.__dict__,
        model.__pydantic_fields_set__,
        model.__pydantic_extra__,
        model.__pydantic_private__,
    )


_SAMPLE_PARTS = {
    "text": {"type": "text", "text": "t"},
    "image": {"type": "image", "data": "AA==", "mimeType": "image/png"},
    "resource": {"type": "resource", "resource": {"uri": "file:///r.txt", "text": "r"}},
}


@cache
def _tagged_multipart_class() -> type[PromptMessageMultipart] | None:
    """The message class with its content parts told apart by their `type` tag, or None.

    Upstream's content is a plain union of part classes (text, image, resource), which
    pydantic validates by trying every class on every part, and most of that time goes into
    the failed tries. Each part class has a distinct literal `type`, so the part with type
    "text" can only ever validate as the text class: a subclass declaring the same union as
    discriminated by `type` builds the same objects in about half the time (measured: 2.2 vs
    3.8 us a message). Its instances are then given upstream's class, which they can take
    since the subclass adds no field, slot or behaviour of its own; they are then equal to,
    and indistinguishable from, what upstream's validator gives. None (upstream's validator
    is used) when the class is not the shape this relies on.
    """
    import typing

    from pydantic import Field

    cls = _multipart_class()
    if set(cls.model_fields) != {"role", "content"}:
        return None
    content = cls.model_fields["content"].annotation
    if typing.get_origin(content) is not list:
        return None
    (union,) = typing.get_args(content)
    if typing.get_origin(union) not in (typing.Union, types.UnionType):
        return None
    tags = []
    for part in typing.get_args(union):
        field = getattr(part, "model_fields", {}).get("type")
        if field is None or typing.get_origin(field.annotation) is not typing.Literal:
            return None
        tags.extend(typing.get_args(field.annotation))
    if len(tags) != len(set(tags)) or len(tags) != len(typing.get_args(union)):
        return None

    class TaggedMultipart(cls):  # type: ignore[valid-type,misc]
        content: list[typing.Annotated[union, Field(discriminator="type")]]  # type: ignore[valid-type]

    # A check of the whole trick on one message of each part class (the class swap raises
    # TypeError if the layouts differ).
    sample = json.dumps({"role": "user", "content": [_SAMPLE_PARTS[tag] for tag in tags]})
    try:
        expected = cls.model_validate_json(sample)
        (got,) = _retyped([TaggedMultipart.model_validate_json(sample)], cls)
    except (KeyError, TypeError, ValidationError):
        return None
    if got != expected or _state(got) != _state(expected):
        return None
    return TaggedMultipart


def _parsed(text: str) -> Any:
    try:
        return pydantic_core.from_json(text)  # twice as fast as json.loads on these documents
    except ValueError:
        return json.loads(text)  # a row with unescaped surrogates, as in decode_multipart_json


def decode_provider_list_json(text: str) -> list[Any]:
    """`decode_provider_json` of each item of a JSON array of stored provider item lists
    (null for a message without any), in one pass."""
    data = _parsed(text)
    if _may_hold_escape(text):
        data = unescape_unstorable(data)
    # Only items stored from SDK objects carry the tag; plain dicts need no walk.
    if _TYPE_KEY in text:
        return [None if items is None else decode_provider(items) for items in data]
    return data


def decode_provider_json(text: str | None) -> Any:
    """`decode_provider` of the stored JSON text of a provider history item list."""
    if text is None or text == "null":  # SQL NULL, or the JSON null SQLAlchemy stores for None
        return None
    data = _parsed(text)
    if _may_hold_escape(text):
        data = unescape_unstorable(data)
    # Only items stored from SDK objects carry the tag; plain dicts need no walk.
    return decode_provider(data) if _TYPE_KEY in text else data


def encode_provider(value: Any) -> Any:
    """A provider history item as JSON, SDK objects tagged with their class."""
    if isinstance(value, BaseModel):
        cls = type(value)
        return {
            _TYPE_KEY: f"{cls.__module__}:{cls.__qualname__}",
            _VALUE_KEY: encode_provider(value.model_dump(mode="json")),
        }
    if isinstance(value, dict):
        return {
            key: encode_provider(entry) for key, entry in value.items() if key != "cache_control"
        }
    if isinstance(value, list | tuple):
        return [encode_provider(entry) for entry in value]
    return value


def decode_provider(value: Any) -> Any:
    if isinstance(value, dict):
        tag = value.get(_TYPE_KEY)
        if isinstance(tag, str) and set(value) == {_TYPE_KEY, _VALUE_KEY}:
            return _rebuild(tag, decode_provider(value[_VALUE_KEY]))
        return {key: decode_provider(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [decode_provider(entry) for entry in value]
    return value


def _rebuild(tag: str, data: Any) -> Any:
    module_name, _, qualname = tag.partition(":")
    if not module_name.startswith(_REBUILDABLE_MODULES):
        raise ValueError(f"refusing to rebuild {tag!r} from the database: not a provider SDK type")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target.model_validate(data)


# ---------------------------------------------------------------------------------------------
# Stored JSON as clients read it (the REST API serves messages without rebuilding objects)


def _untagged(value: Any) -> Any:
    """`value` with each tagged SDK object replaced by its JSON (what `decode_provider` would
    rebuild the class from)."""
    if isinstance(value, dict):
        tag = value.get(_TYPE_KEY)
        if isinstance(tag, str) and set(value) == {_TYPE_KEY, _VALUE_KEY}:
            return _untagged(value[_VALUE_KEY])
        return {key: _untagged(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_untagged(entry) for entry in value]
    return value


def _json_text(value: Any) -> str:
    try:
        return pydantic_core.to_json(value).decode()
    except ValueError:  # a lone surrogate has no UTF-8 form: written as a \u escape
        return json.dumps(value)


def served_multipart_json(text: str) -> str:
    """The stored JSON text of a multipart message as a client reads it: the text itself, or,
    when it holds escaped characters (`escape_unstorable`), the same JSON with them restored."""
    if not _may_hold_escape(text):
        return text
    return _json_text(unescape_unstorable(_parsed(text)))


def served_provider_json(text: str | None) -> str:
    """The stored JSON text of a message's provider-native items as a client reads it: the
    provider's own JSON, SDK objects as their JSON (without the class tag stored to rebuild
    them) and escaped characters restored; "null" when there are none."""
    if text is None:
        return "null"
    holds_escape = _may_hold_escape(text)
    if not holds_escape and _TYPE_KEY not in text:
        return text
    data = _parsed(text)
    if holds_escape:
        data = unescape_unstorable(data)
    return _json_text(_untagged(data))

"""Reading and writing fastagent.config.yaml-style files with errors that say where.

Every YAML document we read (settings files, `config set` values, agent bundles) goes through
`parse_yaml`, which refuses what PyYAML alone would take: duplicate keys, a list or mapping used
as a key, NUL characters, and documents that grow past sane bounds once aliases are expanded
("billion laughs": a few hundred bytes of nested `*alias` references expand to gigabytes when
stored or validated). The bounds: `MAX_YAML_BYTES` of input, `MAX_YAML_NODES` values and
`MAX_YAML_BYTES` of text counting every alias use in full, and `MAX_YAML_DEPTH` levels of nesting.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mcp_agent.db.settings.document import ConfigError

#: Largest YAML input read, and largest total of text its values may expand to.
MAX_YAML_BYTES = 10 * 1024 * 1024
#: Most values (scalars, lists, mappings) a document may hold, each alias use counted in full.
MAX_YAML_NODES = 100_000
#: Deepest nesting of lists and mappings, through aliases too.
MAX_YAML_DEPTH = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader within bounds (size, values, depth, expansion) that refuses duplicate keys
    (PyYAML would silently keep the last one, so two servers with the same name would quietly
    become one), unhashable keys and NUL characters."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # Checked while composing, which recurses once per level: a deeply nested document
        # would otherwise end in Python's RecursionError rather than a YAML error.
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_YAML_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: Node) -> None:
    """Refuse a document whose values, with every alias expanded, exceed the bounds, that
    refers to itself, or holds a NUL character.

    Aliases share one node, so the walk visits each node once and sums its children's sizes;
    a bomb's expanded size is computed without expanding it.
    """
    # Per node: (values, characters of text, depth) once expanded; capped past the bounds.
    expanded: dict[int, tuple[int, int, int]] = {}
    on_path: set[int] = set()
    pending: list[tuple[Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes = [expanded[id(child)] for child in _children(node)]
            values = min(1 + sum(size[0] for size in sizes), MAX_YAML_NODES + 1)
            text = len(node.value) if isinstance(node, ScalarNode) else 0
            text = min(text + sum(size[1] for size in sizes), MAX_YAML_BYTES + 1)
            depth = 1 + max((size[2] for size in sizes), default=0)
            expanded[key] = (values, text, depth)
            _check_bounds(node, values, text, depth)
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise ComposerError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        if isinstance(node, ScalarNode) and "\x00" in node.value:
            raise ConstructorError(
                None,
                None,
                "a NUL character (\\0), which the database cannot store",
                node.start_mark,
            )
        on_path.add(key)
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in expanded)


def _check_bounds(node: Node, values: int, text: int, depth: int) -> None:
    if values > MAX_YAML_NODES:
        problem = f"expands to more than {MAX_YAML_NODES:,} values (counting each alias use)"
    elif text > MAX_YAML_BYTES:
        problem = (
            f"expands to more than {MAX_YAML_BYTES // (1024 * 1024)} MB of text "
            "(counting each alias use)"
        )
    elif depth > MAX_YAML_DEPTH:
        problem = f"nests more than {MAX_YAML_DEPTH} levels deep through aliases"
    else:
        return
    raise ComposerError(None, None, f"this value {problem}", node.start_mark)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *defaults`, merged by construct_mapping; its keys may be overridden
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            kind = "a list" if isinstance(key, list) else f"a {type(key).__name__}"
            if isinstance(key, dict):
                kind = "a mapping"
            raise ConstructorError(
                None,
                None,
                f"{kind} cannot be a key (quote it to make it text)",
                key_node.start_mark,
            )
        if key in seen:
            raise ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key].line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def parse_yaml(text: str, *, source: str) -> dict[str, Any]:
    """Parse one YAML document whose top level is a mapping (or empty).

    Raises:
        ConfigError: naming the source, line and column.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(
            [f"{source}: {len(text):,} characters; at most {MAX_YAML_BYTES:,} are read"]
        )
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as error:
        character = (
            f"#x{error.character:04x}" if isinstance(error.character, int) else "a character"
        )
        raise ConfigError(
            [f"{source}: {_position(text, error.position)}: {character} is not allowed in YAML"]
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(error, "problem", None) or getattr(error, "context", None) or error
        raise ConfigError([f"{source}: {where}: {problem}"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{source}: the top level must be a mapping of settings"])
    return loaded


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read and parse a UTF-8 YAML file (a byte-order mark is allowed) within the bounds.

    Raises:
        ConfigError: the file cannot be read, is too large, is not UTF-8, or is not valid YAML;
            naming the file, and the line and column where there is one.
    """
    try:
        with path.open("rb") as stream:
            # One byte past the bound tells "too large" without reading a huge file whole.
            data = stream.read(MAX_YAML_BYTES + 1)
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror or error})"]) from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_YAML_BYTES:,} bytes, the most read"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(
            [
                f"{path}: line {line}, column {column}: not UTF-8 text (byte "
                f"0x{data[error.start]:02x}); save the file as UTF-8"
            ]
        ) from None
    return parse_yaml(text, source=str(path))


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)

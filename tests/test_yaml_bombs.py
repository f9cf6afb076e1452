"""Issue #13, item 9: YAML documents whose expansion exceeds sane bounds are refused.

The trial's 468-byte config of nested aliases ("billion laughs") expanded to a 1.6 GB database.
Every YAML loader of ours (config files, `config set` values, agent bundles) now refuses a
document past the bounds of `settings.yaml_files` with an error naming the file and line,
before anything is built or stored, on both backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_agent.db.settings.document import ConfigError
from mcp_agent.db.settings.yaml_files import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    parse_yaml,
)
from tests.support.cli import ainvoke
from tests.test_bad_input_cli import assert_clean_failure, database_snapshot, readable


def laughs(levels: int = 9, width: int = 9) -> str:
    """The classic alias bomb: each level lists the previous one `width` times."""
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        uses = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{uses}]")
    return "\n".join(lines) + "\n"


def _nested(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


#: (case id, document, what the message says, the line it names).
BOMBS = [
    ("alias bomb", laughs(), f"more than {MAX_YAML_NODES:,} values", 6),
    (
        "alias bomb of long strings",
        'big: &big "' + "x" * 1_000_000 + '"\n' + "many: [" + ", ".join(["*big"] * 11) + "]\n",
        "more than 10 MB of text",
        2,
    ),
    ("nesting past the depth bound", _nested(MAX_YAML_DEPTH + 5), "nested more than 100", 1),
    (
        "depth reached through aliases",
        "".join(
            f"d{level}: &d{level} [{'*d' + str(level - 1) if level else '[]'}]\n"
            for level in range(MAX_YAML_DEPTH + 2)
        ),
        "nests more than 100 levels deep through aliases",
        None,
    ),
    ("an alias inside itself", "loop: &loop [*loop]\n", "refers to a value that contains it", 1),
]


@pytest.mark.parametrize(
    ("document", "problem", "line"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS]
)
def test_parse_yaml_refuses_documents_past_the_bounds(
    document: str, problem: str, line: int | None
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_yaml(document, source="bomb.yaml")
    message = str(raised.value)
    assert "bomb.yaml: line " in message and problem in message
    if line is not None:
        assert f"bomb.yaml: line {line}," in message


def test_input_past_the_size_bound_is_not_parsed() -> None:
    with pytest.raises(ConfigError, match="at most 10,485,760 are read"):
        parse_yaml("a: " + "x" * MAX_YAML_BYTES, source="huge.yaml")


def test_documents_within_the_bounds_still_load() -> None:
    # Aliases, merge keys and nesting as real configs use them.
    document = (
        "defaults: &defaults {command: uv, args: [run, server.py]}\n"
        "mcp:\n  servers:\n    one: {<<: *defaults, cwd: one}\n    two:\n      <<: *defaults\n"
        + _nested(MAX_YAML_DEPTH - 2)
        + laughs(levels=4, width=9)  # 9**4 = 6,561 values once expanded
    )
    loaded = parse_yaml(document, source="fine.yaml")
    assert loaded["mcp"]["servers"]["one"] == {
        "command": "uv",
        "args": ["run", "server.py"],
        "cwd": "one",
    }
    assert len(loaded["l4"]) == 9


async def test_config_import_refuses_the_alias_bomb(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "fastagent.config.yaml"
    config.write_text("default_model: passthrough\n" + laughs(), encoding="utf-8")
    assert config.stat().st_size < 600  # the trial's file was 468 bytes
    before = await database_snapshot(database_url)

    result = await ainvoke("config", "import", str(config), "--database-url", database_url)

    assert result.exit_code == 2, result.output
    message = readable(result.output)
    assert f"{config}: line 7, column 5: this value expands to more than" in message
    assert_clean_failure(result.output)
    assert await database_snapshot(database_url) == before


async def test_agents_import_refuses_the_alias_bomb(database_url: str, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(
        laughs() + "agents:\n  - {name: writer, type: agent, instruction: hi, servers: *l9}\n",
        encoding="utf-8",
    )
    before = await database_snapshot(database_url)

    result = await ainvoke("agents", "import", str(bundle), "--database-url", database_url)

    assert result.exit_code == 2, result.output
    message = readable(result.output)
    assert f"Invalid agent definitions: {bundle}: line 6, column 5: this value expands" in message
    assert_clean_failure(result.output)
    assert await database_snapshot(database_url) == before


async def test_config_set_refuses_an_alias_bomb_value(database_url: str) -> None:
    value = "{" + laughs().strip().replace("\n", ", ") + "}"
    before = await database_snapshot(database_url)

    result = await ainvoke("config", "set", "logger.extra", value, "--database-url", database_url)

    assert result.exit_code == 2, result.output
    assert "this value expands to more than" in readable(result.output)
    assert_clean_failure(result.output)
    assert await database_snapshot(database_url) == before

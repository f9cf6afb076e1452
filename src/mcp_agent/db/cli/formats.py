"""Output a program can read: `--json` / `--format json|yaml|table` on every list and show
command, and tables that never shorten the values a user types next.

The JSON of a command is its domain objects (`SessionSummary`, `ExecutionRecord`,
`EventRecord`, ...) with their field names, which are the stable names documented in
docs/cli-output.md: times are ISO 8601 in UTC, money is a decimal string (exact, as stored),
everything else is what the database holds. Data goes to stdout as written, never wrapped or
styled; the table format is for people and may change.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from rich.table import Table

from mcp_agent.db.cli.output import console


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="table (for people), json or yaml (stable field names: docs/cli-output.md).",
        case_sensitive=False,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Never shorten a column to fit the terminal."),
]


def chosen_format(json_flag: bool, output_format: OutputFormat | None) -> OutputFormat:
    """The format asked for: `--json` and `--format` together must agree."""
    if json_flag and output_format not in (None, OutputFormat.JSON):
        raise typer.BadParameter(
            f"--json and --format {output_format.value} disagree; give one of them",
            param_hint="--format",
        )
    if json_flag:
        return OutputFormat.JSON
    return output_format or OutputFormat.TABLE


def to_data(value: Any) -> Any:
    """`value` as JSON-ready data: dataclasses and pydantic models by field name, times in
    ISO 8601, decimals as exact strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_data(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(key): to_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_data(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Exact, without the column's padding: Numeric(12, 6) gives back 2.000000 for 2.
        return f"{value.normalize():f}"
    if isinstance(value, enum.Enum):
        return value.value
    return value


def write_data(text: str) -> None:
    """Write data (JSON, YAML, an export) to stdout exactly: no wrapping, no styling."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def json_text(value: Any) -> str:
    return json.dumps(to_data(value), indent=2, ensure_ascii=False)


def yaml_text(value: Any) -> str:
    from mcp_agent.db.settings.yaml_files import dump_yaml

    return dump_yaml(to_data(value))


def print_document(value: Any, output_format: OutputFormat) -> None:
    """Print `value` as JSON or YAML (the table format is each command's own)."""
    if output_format is OutputFormat.YAML:
        write_data(yaml_text(value))
    else:
        write_data(json_text(value))


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its header and how a row shows in it.

    `typed` marks a value users type into the next command (an id, a name, a model): its
    column is never narrower than its longest value, so a terminal shortens other columns
    instead.
    """

    header: str
    cell: Callable[[Any], str]
    typed: bool = False
    justify: Literal["left", "right"] = "left"


def print_rows(
    rows: Sequence[Any],
    columns: Iterable[Column],
    *,
    title: str,
    output_format: OutputFormat,
    wide: bool = False,
    document: Any = None,
) -> None:
    """Print `rows` as a table, or (`document`, else the rows) as JSON or YAML."""
    if output_format is not OutputFormat.TABLE:
        print_document(rows if document is None else document, output_format)
        return
    table = Table(title=title)
    cells = [(column, [column.cell(row) for row in rows]) for column in columns]
    for column, values in cells:
        longest = max((len(value) for value in values), default=0)
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=column.typed or wide,
            min_width=max(longest, len(column.header)) if column.typed or wide else None,
        )
    for index in range(len(rows)):
        table.add_row(*(values[index] for _column, values in cells))
    if wide:
        # As wide as the rows need, whatever the terminal: lines may run past its edge.
        console.print(table, width=max(console.width, table_width(cells)), crop=False)
    else:
        console.print(table)


def table_width(cells: Sequence[tuple[Column, list[str]]]) -> int:
    """Columns at their longest value, with rich's borders and padding (3 per column + 1)."""
    return (
        sum(
            max([len(column.header), *(len(value) for value in values)]) + 3
            for column, values in cells
        )
        + 1
    )

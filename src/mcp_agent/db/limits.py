"""What both backends accept, read from the models, and checks that refuse the rest up front.

PostgreSQL refuses text longer than a `VARCHAR(n)` column, any NUL character in text or JSON,
integers outside its column's 16/32/64-bit range and numbers with more digits than a
`NUMERIC(p, s)` holds; SQLite stores all of those (or overflows in the driver). Checking
values against the same limits before they reach either database makes a bad value the same
clear error, naming the field, on both backends, with nothing changed.

    check_column_value(SessionRow.session_id, value, field="--session")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, Numeric, SmallInteger, String
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.schema import Column

from mcp_agent.db.errors import InputError
from mcp_agent.db.models import (
    AgentRow,
    AgentVersionRow,
    ExecutionRow,
    MessageRow,
    SessionRow,
)

#: The integer ranges of PostgreSQL's SMALLINT, INTEGER and BIGINT (SQLite's INTEGER is
#: 64-bit, so these are what both accept).
SMALLINT_RANGE = (-(2**15), 2**15 - 1)
INTEGER_RANGE = (-(2**31), 2**31 - 1)
BIGINT_RANGE = (-(2**63), 2**63 - 1)
INTEGER_MAX = INTEGER_RANGE[1]

NUL = "\x00"

ColumnLike = InstrumentedAttribute[Any] | Column[Any]


def _column(column: ColumnLike) -> Column[Any]:
    if isinstance(column, InstrumentedAttribute):
        return column.property.columns[0]  # type: ignore[attr-defined, no-any-return]
    return column


def max_length(column: ColumnLike) -> int | None:
    """The length a text column holds (`String(n)`), or None when it is unbounded."""
    column_type = _column(column).type
    return column_type.length if isinstance(column_type, String) else None


def integer_range(column: ColumnLike) -> tuple[int, int]:
    """The values an integer column holds on both backends."""
    column_type = _column(column).type
    # Subclasses first: BigInteger and SmallInteger are Integers too.
    if isinstance(column_type, BigInteger):
        return BIGINT_RANGE
    if isinstance(column_type, SmallInteger):
        return SMALLINT_RANGE
    if isinstance(column_type, Integer):
        return INTEGER_RANGE
    raise TypeError(f"{_column(column)} is not an integer column")


SESSION_ID_MAX_LENGTH = max_length(SessionRow.session_id) or 0
AGENT_NAME_MAX_LENGTH = max_length(AgentRow.name) or 0
EXECUTION_ID_MAX_LENGTH = max_length(ExecutionRow.execution_id) or 0
MODEL_NAME_MAX_LENGTH = max_length(ExecutionRow.model) or 0
#: Versions start at 1 (a check constraint) and are INTEGERs.
VERSION_RANGE = (1, integer_range(AgentVersionRow.version)[1])
#: Message sequences start at 1 and are INTEGERs.
SEQUENCE_RANGE = (1, integer_range(MessageRow.sequence)[1])


def _shown(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def check_text(value: str, *, field: str, max_length: int | None = None) -> str:
    """`value`, if both backends can store it under `field`.

    Raises:
        InputError: it holds a NUL character, or is longer than `max_length`.
    """
    if NUL in value:
        raise InputError(
            field,
            f"{_shown(value)} contains a NUL character (\\0, at position "
            f"{value.index(NUL) + 1}), which the database cannot store",
        )
    if max_length is not None and len(value) > max_length:
        raise InputError(
            field, f"{_shown(value)} is {len(value)} characters long; at most {max_length} fit"
        )
    return value


def check_integer(value: int, *, field: str, minimum: int, maximum: int) -> int:
    """`value`, if it lies within `minimum`..`maximum`.

    Raises:
        InputError: naming the field and the range.
    """
    if not minimum <= value <= maximum:
        raise InputError(field, f"{value} is out of range: expected {minimum} to {maximum}")
    return value


def check_decimal(
    value: Decimal | float | int, *, field: str, precision: int, scale: int
) -> Decimal | float | int:
    """`value`, if a `NUMERIC(precision, scale)` column holds it (after rounding to `scale`).

    Raises:
        InputError: not a finite number, or too many digits before the decimal point.
    """
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InputError(field, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise InputError(field, f"{value!r} is not a finite number")
    limit = Decimal(10) ** (precision - scale)
    if abs(number.quantize(Decimal(1).scaleb(-scale))) >= limit:
        raise InputError(field, f"{value} is too large: it must be below {limit}")
    return value


def find_json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where in a JSON-like value something the database cannot store sits, and what: a NUL
    character in a string or key, or a float that is not finite. None when it all fits."""
    if isinstance(value, str):
        return (path, "a NUL character (\\0)") if NUL in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"the number {value}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return here, "a NUL character (\\0) in the key"
            found = find_json_problem(item, here)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_json_problem(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_json(value: Any, *, field: str) -> Any:
    """`value`, if a JSON column stores it on both backends.

    Raises:
        InputError: naming the field, the place inside the value, and what is wrong there.
    """
    found = find_json_problem(value)
    if found is not None:
        where, what = found
        raise InputError(
            f"{field}.{where}" if where else field,
            f"{what}, which the database cannot store",
        )
    return value


def check_column_value(column: ColumnLike, value: Any, *, field: str) -> Any:
    """`value`, if `column` holds it on both backends; None always passes (nullability is the
    caller's business). Checks by the column's type: text length and NUL, integer range,
    NUMERIC digits, NUL and non-finite numbers in JSON.

    Raises:
        InputError: naming `field`.
    """
    if value is None:
        return None
    column_type = _column(column).type
    if isinstance(column_type, String) and isinstance(value, str):
        return check_text(value, field=field, max_length=column_type.length)
    if isinstance(column_type, Integer) and isinstance(value, int):
        minimum, maximum = integer_range(column)
        return check_integer(value, field=field, minimum=minimum, maximum=maximum)
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        if column_type.precision is not None:
            return check_decimal(
                value,
                field=field,
                precision=column_type.precision,
                scale=column_type.scale or 0,
            )
        return value
    if isinstance(column_type, JSON):
        return check_json(value, field=field)
    return value

"""Text no column can hold is refused at the door, naming where it was.

PostgreSQL stores neither a NUL character nor a lone surrogate (text with no UTF-8 form) in
text or JSON columns, and settings and definitions are not escaped the way message contents
are; a request carrying one is a 422 naming the path or query parameter, or the place in the
JSON body, before any store is called, on both backends alike. (The CLI refuses NUL in its
arguments the same way.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from mcp_agent.db.api.problems import dotted_field
from mcp_agent.db.errors import InputError

#: A JSON escape of NUL or of a surrogate: only a body holding one is parsed for a closer look.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def unstorable(text: str) -> str | None:
    """What in `text` no database column holds, or None when it all fits."""
    if "\x00" in text:
        return "a NUL character (\\0)"
    if any("\ud800" <= character <= "\udfff" for character in text):
        return "a lone surrogate (text that has no UTF-8 form)"
    return None


def _find_unstorable(value: Any, path: list[str | int]) -> tuple[list[str | int], str] | None:
    if isinstance(value, str):
        what = unstorable(value)
        return (path, what) if what else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            what = unstorable(str(key))
            if what:
                return [*path, str(key)], f"{what} in the key"
            found = _find_unstorable(item, [*path, str(key)])
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unstorable(item, [*path, index])
            if found:
                return found
    return None


async def refuse_unstorable_text(request: Request) -> None:
    """Raises:
    InputError: a path or query parameter, or a string or key of the JSON body, holds text
        the database cannot store."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        what = unstorable(str(value))
        if what:
            raise InputError(name, f"holds {what}, which the database cannot store")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    body = await request.body()
    if not _SUSPECT_ESCAPE.search(body):
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: the route's own parsing reports it
    check_storable(document)


def check_storable(document: Any) -> None:
    """Raises:
    InputError: naming the place in `document` (parsed JSON or YAML) of text the database
        cannot store."""
    found = _find_unstorable(document, [])
    if found:
        path, what = found
        raise InputError(
            dotted_field(path) or "body", f"holds {what}, which the database cannot store"
        )

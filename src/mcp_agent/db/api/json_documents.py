"""JSON responses serialised in one pass, for routes that return many items.

FastAPI validates a route's return value against its response model before serialising it:
for a page of a thousand messages, each holding upstream's `PromptMessageMultipart`, that
validation costs more than reading them from the database. Routes returning such pages build
plain dicts of the objects they already hold (the response model still documents the shape)
and hand them to pydantic-core, which serialises models, dataclasses and datetimes on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from fastapi import Response


def json_bytes(document: Any) -> bytes:
    """`document` as JSON: models by their aliases (`_meta`), datetimes in ISO 8601 with their
    zone, decimals as strings (as FastAPI writes them); a provider object pydantic does not
    know becomes its text rather than failing the response."""
    return pydantic_core.to_json(document, by_alias=True, serialize_unknown=True)


def json_response(
    document: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=json_bytes(document),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def page_response(items_json: Sequence[bytes], next_cursor: str | None) -> Response:
    """A Page (`{"items": [...], "next_cursor": ...}`) of items already written as JSON."""
    body = b"".join(
        (
            b'{"items":[',
            b",".join(items_json),
            b'],"next_cursor":',
            json_bytes(next_cursor),
            b"}",
        )
    )
    return Response(content=body, media_type="application/json")

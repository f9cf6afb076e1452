"""Cursor pagination: bounded page sizes and opaque cursors.

A cursor is the sort key of the last item a page returned, with the name of the list it
belongs to, as base64url JSON. Clients treat it as opaque; the server finds the next page by
the key (keyset pagination), so items added or removed between two requests neither repeat nor
shift the pages that follow. A cursor from another list, or one that was altered, is a 422
naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from mcp_agent.db.errors import InputError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: Longer cursors are refused unread (ours are a few dozen characters).
MAX_CURSOR_LENGTH = 1000

ItemT = TypeVar("ItemT")
#: A sort key: a tuple of strings and integers (JSON round-trips them unchanged).
SortKey = tuple[str | int, ...]


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: `next_cursor` is null on the last page."""

    items: list[ItemT]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None

    def after(self, list_name: str) -> SortKey | None:
        """The sort key the cursor points after, or None for the first page."""
        return None if self.cursor is None else decode_cursor(self.cursor, list_name)


async def page_request(
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page (at most {MAX_PAGE_SIZE})."),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="`next_cursor` of the previous page; omit for the first page.",
        ),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageParameters = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(list_name: str, key: SortKey) -> str:
    text = json.dumps({"list": list_name, "after": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, list_name: str) -> SortKey:
    """The sort key inside `cursor`.

    Raises:
        InputError: naming `cursor`, when it is not one of this list's cursors.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (UnicodeError, ValueError, binascii.Error):
        document = None
    if not isinstance(document, dict) or document.get("list") != list_name:
        raise InputError("cursor", f"not a cursor of this list ({list_name}); start without one")
    key = document.get("after")
    if not isinstance(key, list) or not all(
        isinstance(part, str | int) and not isinstance(part, bool) for part in key
    ):
        raise InputError("cursor", "not a valid cursor; start without one")
    return tuple(key)


def paginate(
    items: Sequence[ItemT],
    page: PageRequest,
    *,
    list_name: str,
    key: Callable[[ItemT], SortKey],
    descending: bool = False,
) -> Page[ItemT]:
    """One page of `items` (any order: they are sorted by `key` here)."""
    after = page.after(list_name)
    ordered = sorted(items, key=key, reverse=descending)
    if after is not None:
        try:
            ordered = [
                item for item in ordered if (key(item) < after if descending else key(item) > after)
            ]
        except TypeError:
            raise InputError("cursor", "not a valid cursor; start without one") from None
    chosen = list(ordered[: page.limit])
    more = len(ordered) > page.limit
    next_cursor = encode_cursor(list_name, key(chosen[-1])) if more and chosen else None
    return Page(items=chosen, next_cursor=next_cursor)


def timed_cursor(cursor: str, list_name: str) -> tuple[datetime, str]:
    """The (time, id) a cursor of a newest-first list points after, the time in UTC.

    Raises:
        InputError: naming `cursor`, when it is not one of this list's, or was altered.
    """
    key = decode_cursor(cursor, list_name)
    try:
        at, identifier = key
        assert isinstance(at, str) and isinstance(identifier, str)
        return datetime.fromisoformat(at).astimezone(UTC), identifier
    except (AssertionError, ValueError, TypeError, OverflowError):
        raise InputError("cursor", "not a valid cursor; start without one") from None

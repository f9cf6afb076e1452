"""Conversations in fa_sessions and fa_messages."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import cache
from operator import gt
from typing import Any, Literal, NamedTuple

from pydantic_core import from_json
from sqlalchemy import (
    Row,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.expression import type_coerce

from mcp_agent.db.conversations.base import NewMessage, SessionSummary, StoredMessage
from mcp_agent.db.conversations.codec import (
    RECORD_SEPARATOR,
    decode_multipart_json,
    decode_multipart_records,
    decode_provider_json,
    decode_provider_list_json,
    encode_multipart,
    encode_provider,
    escape_nul,
    served_multipart_json,
    served_provider_json,
)
from mcp_agent.db.errors import SessionError  # noqa: F401 - defined in errors, imported from here too
from mcp_agent.db.models import MessageRow, SessionRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runtime import DatabaseRuntime

#: How sessions are listed: by their last activity, or by when they were created.
SessionOrder = Literal["updated", "created"]


class StoredMessageJson(NamedTuple):
    """A stored message with its two histories as JSON text, as a client reads them
    (`SqlConversationStore.load_page_json`): no upstream object is built. A named tuple: a
    frozen dataclass sets each field through object.__setattr__, which cost more than all the
    rest of reading a page (2.3 ms of 1,000 messages)."""

    message_id: int
    session_id: str
    agent_name: str
    sequence: int
    role: str
    #: Upstream's PromptMessageMultipart as JSON (fields that are None left out).
    content_json: str
    #: The provider-native items as the provider's JSON; "null" when the model keeps none.
    provider_messages_json: str
    provider: str | None
    model: str | None
    created_at: datetime


def make_session_id() -> str:
    """A new session id: 16 hex digits, short enough to type when resuming."""
    return uuid.uuid4().hex[:16]


def _json_text(column: Any, dialect: str) -> Any:
    """The column's stored JSON as text, so decoding can skip building Python dicts."""
    if dialect == "postgresql":
        return cast(column, Text)
    return type_coerce(column, Text)  # SQLite stores JSON as text already


def _history_columns(dialect: str) -> tuple[Any, ...]:
    return (
        MessageRow.message_id,
        MessageRow.session_id,
        MessageRow.agent_name,
        MessageRow.sequence,
        _json_text(MessageRow.content, dialect).label("content"),
        _json_text(MessageRow.provider_messages, dialect).label("provider_messages"),
        MessageRow.provider,
        MessageRow.model,
        MessageRow.created_at,
    )


def _stored(row: Row[Any]) -> StoredMessage:
    # Unpacked once: attribute access by name on a Row costs more than the decoding itself.
    message_id, session_id, agent_name, sequence, content, provider_messages, *rest = row
    provider, model, created_at = rest
    return StoredMessage(
        message_id=message_id,
        session_id=session_id,
        agent_name=agent_name,
        sequence=sequence,
        content=decode_multipart_json(content),
        provider_messages=decode_provider_json(provider_messages),
        provider=provider,
        model=model,
        created_at=created_at,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a long history is read and decoded.

    Decoding allocates many objects and no cycles; with the collector on, the full collections
    it triggers scan the whole (large, in an agent process) heap again and again, which made a
    10,000-message load 2-3x slower, and a history read in chunks would have its decoded
    messages scanned again after each chunk. Other tasks may run while a load awaits the
    database (milliseconds; a second or two for 100,000 messages): they only allocate without
    collections meanwhile. The collector is resumed after, as it was (nested pauses leave it
    to the outermost).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: (session_id, cut) from a session up through its branch ancestors; cut is the last
#: message_id of that ancestor the branch sees (None for the session itself).
Lineage = list[tuple[str, int | None]]


async def _lineage(
    executor: AsyncSession | AsyncConnection, session_id: str, *, lock: bool = False
) -> Lineage:
    """The session's lineage; with `lock`, the session row's write lock is taken first.

    Locking is an UPDATE (not SELECT ... FOR UPDATE, which SQLite lacks): it serialises
    appenders to a session on both backends (a row lock on PostgreSQL, the database write lock
    on SQLite), and its RETURNING gives the first step of the lineage in the same round trip.
    """
    lineage: Lineage = []
    current: str | None = session_id
    cut: int | None = None
    while current is not None:
        step: Select[Any] | ReturningUpdate[Any]
        if lock and current == session_id:
            step = (
                update(SessionRow)
                .where(SessionRow.session_id == current)
                .values(updated_at=utc_now())
                .returning(SessionRow.parent_session_id, SessionRow.branch_point_message_id)
            )
        else:
            step = select(SessionRow.parent_session_id, SessionRow.branch_point_message_id).where(
                SessionRow.session_id == current
            )
        row = (await executor.execute(step)).first()
        if row is None:
            if not lineage:
                return []
            raise SessionError(f"session {current!r}, an ancestor of {session_id!r}, is missing")
        lineage.append((current, cut))
        if row.branch_point_message_id is not None:
            cut = (
                row.branch_point_message_id
                if cut is None
                else min(cut, row.branch_point_message_id)
            )
        current = row.parent_session_id
    return lineage


def _visible(lineage: Lineage):  # noqa: ANN202 - a SQL expression
    return or_(
        *(
            MessageRow.session_id == session_id
            if cut is None
            else and_(MessageRow.session_id == session_id, MessageRow.message_id <= cut)
            for session_id, cut in lineage
        )
    )


async def _load_row_by_row(
    connection: AsyncConnection, dialect: str, session_id: str, agent_name: str
) -> list[StoredMessage]:
    """`SqlConversationStore.load` a row per message: for a history too large for one value."""
    lineage = await _lineage(connection, session_id)
    if not lineage:
        return []
    rows = (
        await connection.execute(
            select(*_history_columns(dialect))
            .where(MessageRow.agent_name == agent_name, _visible(lineage))
            .order_by(MessageRow.sequence)
        )
    ).all()
    with _collector_paused():
        return [_stored(row) for row in rows]


#: By backend, the messages read by a load's first statement and the most read by one
#: statement. On PostgreSQL a longer history is read in chunks of doubling size, each
#: statement sent before the chunk before it is decoded, so that the server prepares the next
#: chunk (on another core) while this process decodes the last one. SQLite reads in this
#: process, in a thread that needs the interpreter lock to hand its rows over: chunks gained
#: nothing there (measured), so it reads a history in one statement.
CHUNKS: dict[str, tuple[int, int]] = {"postgresql": (256, 4096), "sqlite": (2**62, 2**62)}


#: The columns of a history as read in bulk, each aggregated into one document (text), in
#: this order; session_ids only where they differ (a branch's inherited messages).
DOCUMENTS = (
    "contents",
    "providers",
    "message_ids",
    "session_ids",
    "sequences",
    "provider_names",
    "models",
    "created",
)


def _history_documents(dialect: str, rows: Any, *, session_ids: bool) -> Select[Any]:
    """The messages of the ordered subquery `rows` (`_history_rows`) as documents (text) in
    one row, named as in DOCUMENTS. Item i of each is message i: `contents` holds the stored
    transcript entries joined with RECORD_SEPARATOR (see `decode_multipart_records`); each
    other is a JSON array: the provider item lists (null for a message without any), then a
    column of the rows each, created as UTC wall time without a zone. All are NULL when there
    is no message.

    A row of documents instead of a row per message: a long history crosses the wire and the
    driver as a few strings, with no Python object per row and column on the way, and each
    JSON array is parsed in one call. The aggregates read the rows in one pass, so they stay
    aligned; neither backend promises to keep the subquery's order in them, which `_decoded`
    checks.
    """

    def joined(value: Any, separator: str) -> Any:
        if dialect == "postgresql":
            return func.string_agg(value, separator)
        return func.group_concat(value, separator)

    documents = [type_coerce(joined(rows.c.contents, RECORD_SEPARATOR), Text).label("contents")]
    for name in DOCUMENTS[1:]:
        if name != "session_ids" or session_ids:
            array = "[" + joined(rows.c[name], ",") + "]"
            documents.append(type_coerce(array, Text).label(name))
    return select(*documents)


def _history_rows(dialect: str, *, session_ids: bool) -> tuple[Any, ...]:
    """The columns `_history_documents` aggregates, as text (JSON but for the contents)."""
    if dialect == "postgresql":

        def json_text(value: Any) -> Any:
            return func.coalesce(cast(func.to_json(value), Text), "null")

        def number(value: Any) -> Any:
            return cast(value, Text)

        def stored(value: Any) -> Any:
            return cast(value, Text)

        # to_json writes a timestamp in ISO 8601 whatever the server's DateStyle.
        created = json_text(func.timezone("UTC", MessageRow.created_at))
    else:  # SQLite stores JSON as text already, and its created_at as UTC wall time

        def json_text(value: Any) -> Any:
            return func.json_quote(value)  # null for NULL

        def number(value: Any) -> Any:
            return value

        def stored(value: Any) -> Any:
            return type_coerce(value, Text)

        created = json_text(MessageRow.created_at)
    columns = {
        "contents": stored(MessageRow.content),
        "providers": func.coalesce(stored(MessageRow.provider_messages), "null"),
        "message_ids": number(MessageRow.message_id),
        "session_ids": json_text(MessageRow.session_id),
        "sequences": number(MessageRow.sequence),
        "provider_names": json_text(MessageRow.provider),
        "models": json_text(MessageRow.model),
        "created": created,
    }
    return tuple(
        column.label(name)
        for name, column in columns.items()
        if name != "session_ids" or session_ids
    )


@cache
def _own_history(dialect: str) -> Select[Any]:
    """Whether the session exists, its parent, and a chunk of its own messages of an agent as
    `_history_documents`: those with a sequence above `after`, at most `limit` of them.

    Parameters session_id, agent_name, after, limit. Built once: a short history loads in
    about the time building the statement took. The session is read by scalar subqueries,
    not joined: SQLite would write the documents into a temporary table to join them.
    """
    session_id = bindparam("session_id")
    rows = (
        select(*_history_rows(dialect, session_ids=False))
        .where(
            MessageRow.session_id == session_id,
            MessageRow.agent_name == bindparam("agent_name"),
            MessageRow.sequence > bindparam("after"),
        )
        .order_by(MessageRow.sequence)
        .limit(bindparam("limit"))
        .subquery()
    )
    session = select(SessionRow.parent_session_id).where(SessionRow.session_id == session_id)
    return _history_documents(dialect, rows, session_ids=False).add_columns(
        session.exists().label("found"), session.scalar_subquery().label("parent")
    )


@cache
def _own_page_json(dialect: str) -> Select[Any]:
    """As `_own_history`, for `load_page_json`: the provider item lists joined with
    RECORD_SEPARATOR as the contents are (each message's stored JSON text, which a client is
    served as it is), and the roles joined with commas (a check constraint keeps them to
    `user` and `assistant`). Parameters session_id, agent_name, after, limit."""

    def joined(value: Any, separator: str) -> Any:
        if dialect == "postgresql":
            return func.string_agg(value, separator)
        return func.group_concat(value, separator)

    session_id = bindparam("session_id")
    rows = (
        select(*_history_rows(dialect, session_ids=False), MessageRow.role.label("roles"))
        .where(
            MessageRow.session_id == session_id,
            MessageRow.agent_name == bindparam("agent_name"),
            MessageRow.sequence > bindparam("after"),
        )
        .order_by(MessageRow.sequence)
        .limit(bindparam("limit"))
        .subquery()
    )
    documents = [
        type_coerce(joined(rows.c.contents, RECORD_SEPARATOR), Text).label("contents"),
        type_coerce(joined(rows.c.providers, RECORD_SEPARATOR), Text).label("providers"),
        type_coerce(joined(rows.c.roles, ","), Text).label("roles"),
        *(
            type_coerce("[" + joined(rows.c[name], ",") + "]", Text).label(name)
            for name in ("message_ids", "sequences", "provider_names", "models", "created")
        ),
    ]
    session = select(SessionRow.parent_session_id).where(SessionRow.session_id == session_id)
    return select(*documents).add_columns(
        session.exists().label("found"), session.scalar_subquery().label("parent")
    )


def _inherited_history(dialect: str, ancestors: Lineage, agent_name: str) -> Select[Any]:
    """What a branch sees of its ancestors' messages of an agent, as `_history_documents`.
    Equal sequences (only possible across a lineage) are ordered by message_id."""
    rows = (
        select(*_history_rows(dialect, session_ids=True))
        .where(MessageRow.agent_name == agent_name, _visible(ancestors))
        .order_by(MessageRow.sequence, MessageRow.message_id)
        .subquery()
    )
    return _history_documents(dialect, rows, session_ids=True)


_fromisoformat = datetime.fromisoformat


def _utc(text: str) -> datetime:
    """A stored created_at (UTC wall time) as `UTCDateTime` returns it."""
    try:
        value = _fromisoformat(text)
    except ValueError:
        value = _sqlite_datetime()(text)  # what SQLAlchemy's SQLite DateTime reads
    return value.replace(tzinfo=UTC)


@cache
def _sqlite_datetime() -> Any:
    from sqlalchemy.dialects.sqlite import DATETIME, dialect

    return DATETIME().result_processor(dialect(), None)


def _array(document: str | None) -> list[Any]:
    if document is None:
        return []
    try:
        return from_json(document)
    except ValueError:
        return json.loads(document)


def _utc_all(created: Sequence[str]) -> list[datetime]:
    """`_utc` of each. The common case parses the text with the zone appended, without a call
    per value: replace() alone cost more than the parse, a microsecond a message. Text with
    an offset of its own (not written by this package) fails it and goes through `_utc`."""
    try:
        return [_fromisoformat(text + "+00:00") for text in created]
    except ValueError:
        return [_utc(text) for text in created]


def _construction() -> Any:
    """A function building StoredMessages from columns of their fields.

    A frozen dataclass's __init__ sets each field through object.__setattr__, which costs
    a microsecond a message: as much as decoding its content. StoredMessage's __init__ does
    nothing else, so the messages are allocated and their slots filled a column at a time,
    which builds equal objects three times as fast. The plain constructor is used should the
    class ever do more.
    """
    names = tuple(field.name for field in dataclasses.fields(StoredMessage))
    if (
        getattr(StoredMessage, "__slots__", None) != names
        or hasattr(StoredMessage, "__post_init__")
        or any(
            field.default_factory is not dataclasses.MISSING
            for field in dataclasses.fields(StoredMessage)
        )
    ):
        return lambda columns: list(map(StoredMessage, *columns))
    setters = [getattr(StoredMessage, name).__set__ for name in names]
    new = object.__new__

    def build(columns: Sequence[Sequence[Any]]) -> list[StoredMessage]:
        messages = [new(StoredMessage) for _ in columns[0]]
        for setter, column in zip(setters, columns, strict=True):
            deque(map(setter, messages, column), maxlen=0)
        return messages

    return build


_built = _construction()


def _decoded(
    agent_name: str,
    session_id: str | None,
    contents: str | None,
    providers: str | None,
    columns: list[list[Any]],
) -> list[StoredMessage]:
    """The messages of `_history_documents`' row, its JSON arrays already parsed (`columns`:
    message_ids, session_ids, sequences, ... as in DOCUMENTS), in order. `session_id` is
    that of all of them, with the session_ids column left out, or None."""
    if session_id is None:
        message_ids, session_ids, sequences, provider_names, models, created = columns
    else:
        message_ids, sequences, provider_names, models, created = columns
        session_ids = [session_id] * len(message_ids)
    if not message_ids or contents is None or providers is None:
        return []
    messages = decode_multipart_records(contents)
    provider_messages = decode_provider_list_json(providers)
    if not all(len(column) == len(messages) for column in (provider_messages, *columns)):
        raise ValueError("the documents of a history do not hold the same number of messages")
    stored = _built(
        (
            message_ids,
            session_ids,
            (agent_name,) * len(message_ids),
            sequences,
            messages,
            provider_messages,
            provider_names,
            models,
            _utc_all(created),
        )
    )
    if any(map(gt, sequences, sequences[1:])):
        stored.sort(key=_position)
    return stored


def _position(message: StoredMessage) -> tuple[int, int]:
    return message.sequence, message.message_id


async def _history(
    connection: AsyncConnection, dialect: str, session_id: str, agent_name: str
) -> list[StoredMessage]:
    """`SqlConversationStore.load` on an open connection.

    A session that is not a branch and holds up to a first chunk (CHUNKS) of messages of the
    agent takes one round trip. A branch then reads its lineage and the messages it inherits
    (each ancestor's up to the branch point), which come before its own. A longer history is
    read a chunk after another, the next statement in flight while a chunk is decoded.
    """
    statement = _own_history(dialect)
    first_chunk, largest_chunk = CHUNKS[dialect]
    parameters = {
        "session_id": session_id,
        "agent_name": agent_name,
        "after": 0,
        "limit": first_chunk,
    }
    contents, providers, *arrays, found, parent = (
        await connection.execute(statement, parameters)
    ).one()
    if not found:
        return []
    inherited: list[StoredMessage] = []
    if parent is not None:
        ancestors = (await _lineage(connection, session_id))[1:]
        branch_contents, branch_providers, *branch_arrays = (
            await connection.execute(_inherited_history(dialect, ancestors, agent_name))
        ).one()
        inherited = _decoded(
            agent_name, None, branch_contents, branch_providers, list(map(_array, branch_arrays))
        )
    history: list[StoredMessage] = []
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            columns = list(map(_array, arrays))
            sequences = columns[1]  # message_ids, sequences, ...: no session_ids here
            if len(sequences) == parameters["limit"]:  # there may be more
                parameters = {
                    **parameters,
                    "after": max(sequences),
                    "limit": min(2 * parameters["limit"], largest_chunk),
                }
                pending = asyncio.ensure_future(connection.execute(statement, parameters))
                await asyncio.sleep(0)  # it runs up to waiting for the database: sent
            history += _decoded(agent_name, session_id, contents, providers, columns)
            if pending is None:
                break
            contents, providers, *arrays, found, _ = (await pending).one()
            pending = None
            if not found:  # the session was deleted meanwhile
                break
    finally:
        if pending is not None:  # decoding failed: let the statement in flight finish first
            with suppress(Exception):
                await pending
    if inherited and history and _position(inherited[-1]) > _position(history[0]):
        # Only when an ancestor's append committed after the branch point was taken.
        return sorted(inherited + history, key=_position)
    return inherited + history


def _too_long(error: DBAPIError) -> bool:
    """Whether a statement failed only because a document outgrew the backend's limit on one
    value (1 GB on both): a history of such messages is read row by row instead."""
    original = error.orig
    return (
        getattr(original, "sqlstate", None) == "54000"  # PostgreSQL: program_limit_exceeded
        or getattr(original, "sqlite_errorname", None) == "SQLITE_TOOBIG"
    )


async def append_messages(
    connection: AsyncConnection, session_id: str, agent_name: str, messages: Sequence[NewMessage]
) -> list[int]:
    """Append one turn inside the caller's transaction (see `ConversationStore.append`).

    Also used by the execution store, so that a call's end and its turn commit together.
    """
    if not messages:
        return []
    lineage = await _lineage(connection, session_id, lock=True)
    if not lineage:
        raise SessionError(f"no session {session_id!r}")
    last = await connection.scalar(
        select(func.max(MessageRow.sequence)).where(
            MessageRow.agent_name == agent_name, _visible(lineage)
        )
    )
    first = (last or 0) + 1
    sequences = list(range(first, first + len(messages)))
    await connection.execute(
        insert(MessageRow),
        [
            {
                "session_id": session_id,
                "agent_name": agent_name,
                "sequence": sequence,
                "role": message.content.role,
                "content": encode_multipart(message.content),
                "provider": message.provider,
                "provider_messages": (
                    None
                    if message.provider_messages is None
                    else escape_nul(encode_provider(message.provider_messages))
                ),
                "model": message.model,
                "execution_id": message.execution_id,
            }
            for sequence, message in zip(sequences, messages, strict=True)
        ],
    )
    return sequences


async def _branch_page_json(
    connection: AsyncConnection,
    dialect: str,
    session_id: str,
    agent_name: str,
    after_sequence: int,
    limit: int,
) -> list[StoredMessageJson]:
    """`load_page_json` of a branch: its inherited and own messages, a row each. Sequences
    continue across the branch point, so they order and page the whole history."""
    lineage = await _lineage(connection, session_id)
    rows = await connection.execute(
        select(*_history_columns(dialect), MessageRow.role)
        .where(
            MessageRow.agent_name == agent_name,
            _visible(lineage),
            MessageRow.sequence > after_sequence,
        )
        .order_by(MessageRow.sequence, MessageRow.message_id)
        .limit(limit)
    )
    messages = []
    for row in rows:
        message_id, holder, agent, sequence, content, provider_items, *rest = row
        provider, model, created_at, role = rest
        messages.append(
            StoredMessageJson(
                message_id=message_id,
                session_id=holder,
                agent_name=agent,
                sequence=sequence,
                role=role,
                content_json=served_multipart_json(content),
                provider_messages_json=served_provider_json(provider_items),
                provider=provider,
                model=model,
                created_at=created_at,
            )
        )
    return messages


class SqlConversationStore:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def ensure_session(self, session_id: str, *, app_name: str | None = None) -> bool:
        """Create the session unless it exists; True when this call created it."""
        async with self._runtime.sessions() as session:
            if await session.get(SessionRow, session_id) is not None:
                return False
        try:
            async with self._runtime.sessions.begin() as session:
                session.add(SessionRow(session_id=session_id, app_name=app_name))
        except IntegrityError:
            return False  # another process created it first
        return True

    async def discard_if_empty(self, session_id: str) -> bool:
        """Delete the session if nothing was stored in it: no message, no branch, and no
        execution still running in it (another process may be mid-turn). One statement, so
        a message stored meanwhile keeps it. True when it was deleted."""
        from mcp_agent.db.models.executions import ExecutionRow

        async with self._runtime.sessions.begin() as session:
            deleted = await session.execute(
                delete(SessionRow).where(
                    SessionRow.session_id == session_id,
                    ~select(MessageRow.message_id)
                    .where(MessageRow.session_id == session_id)
                    .exists(),
                    ~select(SessionRow.session_id)
                    .where(SessionRow.parent_session_id == session_id)
                    .correlate(None)
                    .exists(),
                    ~select(ExecutionRow.execution_id)
                    .where(ExecutionRow.session_id == session_id, ExecutionRow.status == "running")
                    .exists(),
                )
            )
            return bool(deleted.rowcount)

    async def load(self, session_id: str, agent_name: str) -> list[StoredMessage]:
        # Core, not ORM entities: a long session loads without an identity map of rows.
        dialect = self._runtime.dialect
        async with self._runtime.engine.connect() as connection:
            if dialect == "postgresql":
                # Reads only: no BEGIN and ROLLBACK, two round trips of the three a short
                # history took. Each statement reads a snapshot of its own, as it did in a
                # READ COMMITTED transaction; appends only add rows after the last, so the
                # chunks of a long history read one after another are the history as of the
                # last of them.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                with _collector_paused():  # through the chunks: see _collector_paused
                    return await _history(connection, dialect, session_id, agent_name)
            except DBAPIError as error:
                if not _too_long(error):
                    raise
                await connection.rollback()
                return await _load_row_by_row(connection, dialect, session_id, agent_name)

    async def append(
        self, session_id: str, agent_name: str, messages: Sequence[NewMessage]
    ) -> list[int]:
        if not messages:
            return []
        async with self._runtime.engine.begin() as connection:
            return await append_messages(connection, session_id, agent_name, messages)

    # -- administration (CLI and API), beyond what a running agent needs -----------------

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        order: SessionOrder = "updated",
        before: tuple[datetime, str] | None = None,
        agent_name: str | None = None,
        parent_session_id: str | None = None,
    ) -> list[SessionSummary]:
        """Sessions newest first, by their last activity (`updated`) or their creation
        (`created`), ties by id; at most `limit`.

        `before` is the (time, session_id) of the last session a previous page returned: the
        next page starts after it (keyset pagination, so rows added meanwhile do not shift
        it). `agent_name` keeps sessions holding messages of that agent (their own, not
        inherited), `parent_session_id` the branches of that session.
        """
        column = SessionRow.updated_at if order == "updated" else SessionRow.created_at
        query = select(SessionRow).order_by(column.desc(), SessionRow.session_id.desc())
        if before is not None:
            at, session_id = before
            query = query.where(
                or_(column < at, and_(column == at, SessionRow.session_id < session_id))
            )
        if agent_name is not None:
            query = query.where(
                select(MessageRow.message_id)
                .where(
                    MessageRow.session_id == SessionRow.session_id,
                    MessageRow.agent_name == agent_name,
                )
                .exists()
            )
        if parent_session_id is not None:
            query = query.where(SessionRow.parent_session_id == parent_session_id)
        return await self._summaries(query.limit(limit))

    async def load_page(
        self, session_id: str, agent_name: str, *, after_sequence: int = 0, limit: int
    ) -> list[StoredMessage]:
        """Part of `load`: the agent's messages with a sequence above `after_sequence`, at
        most `limit`, oldest first (a branch's inherited messages included, as `load`).

        A session that is not a branch reads its page in one statement, the documents `load`
        reads a chunk of; a branch reads its lineage first. Empty for an unknown session.
        """
        dialect = self._runtime.dialect
        async with self._runtime.engine.connect() as connection:
            if dialect == "postgresql":
                # Reads only, as load: no BEGIN and ROLLBACK round trips.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            with _collector_paused():
                contents, providers, *arrays, found, parent = (
                    await connection.execute(
                        _own_history(dialect),
                        {
                            "session_id": session_id,
                            "agent_name": agent_name,
                            "after": after_sequence,
                            "limit": limit,
                        },
                    )
                ).one()
                if not found:
                    return []
                if parent is None:
                    columns = list(map(_array, arrays))
                    return _decoded(agent_name, session_id, contents, providers, columns)
                # A branch: its inherited and own messages, one row each. Sequences continue
                # across the branch point, so they order and page the whole history.
                lineage = await _lineage(connection, session_id)
                rows = (
                    await connection.execute(
                        select(*_history_columns(dialect))
                        .where(
                            MessageRow.agent_name == agent_name,
                            _visible(lineage),
                            MessageRow.sequence > after_sequence,
                        )
                        .order_by(MessageRow.sequence, MessageRow.message_id)
                        .limit(limit)
                    )
                ).all()
                return [_stored(row) for row in rows]

    async def load_page_json(
        self, session_id: str, agent_name: str, *, after_sequence: int = 0, limit: int
    ) -> list[StoredMessageJson]:
        """`load_page` with each message's histories as the JSON text they are stored as
        (escaped characters restored, SDK objects without their class tag): what a client is
        served, without building upstream's objects only to write them out again.

        Empty for an unknown session; a branch's inherited messages come first, as `load`.
        """
        dialect = self._runtime.dialect
        async with self._runtime.engine.connect() as connection:
            if dialect == "postgresql":
                # Reads only, as load: no BEGIN and ROLLBACK round trips.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            contents, providers, roles, *arrays, found, parent = (
                await connection.execute(
                    _own_page_json(dialect),
                    {
                        "session_id": session_id,
                        "agent_name": agent_name,
                        "after": after_sequence,
                        "limit": limit,
                    },
                )
            ).one()
            if not found:
                return []
            if parent is not None:
                return await _branch_page_json(
                    connection, dialect, session_id, agent_name, after_sequence, limit
                )
        if contents is None or providers is None or roles is None:
            return []
        message_ids, sequences, provider_names, models, created = map(_array, arrays)
        columns = zip(
            message_ids,
            sequences,
            roles.split(","),
            contents.split(RECORD_SEPARATOR),
            providers.split(RECORD_SEPARATOR),
            provider_names,
            models,
            _utc_all(created),
            strict=True,
        )
        messages = [
            StoredMessageJson(
                message_id=message_id,
                session_id=session_id,
                agent_name=agent_name,
                sequence=sequence,
                role=role,
                content_json=served_multipart_json(content),
                provider_messages_json=served_provider_json(items),
                provider=provider,
                model=model,
                created_at=created_at,
            )
            for message_id, sequence, role, content, items, provider, model, created_at in columns
        ]
        if any(map(gt, sequences, sequences[1:])):  # see _history_documents
            messages.sort(key=lambda message: message.sequence)
        return messages

    async def has_session(self, session_id: str) -> bool:
        async with self._runtime.sessions() as session:
            found = await session.scalar(
                select(SessionRow.session_id).where(SessionRow.session_id == session_id)
            )
        return found is not None

    async def summary(self, session_id: str) -> SessionSummary:
        """One session with its message counts by agent (its own rows, not its ancestors')."""
        found = await self._summaries(select(SessionRow).where(SessionRow.session_id == session_id))
        if not found:
            raise SessionError(f"no session {session_id!r}")
        return found[0]

    async def _summaries(self, query: Select[tuple[SessionRow]]) -> list[SessionSummary]:
        async with self._runtime.sessions() as session:
            rows = list(await session.scalars(query))
            counts: dict[str, dict[str, int]] = {}
            if rows:
                for session_id, agent, count in await session.execute(
                    select(MessageRow.session_id, MessageRow.agent_name, func.count())
                    .where(MessageRow.session_id.in_([row.session_id for row in rows]))
                    .group_by(MessageRow.session_id, MessageRow.agent_name)
                ):
                    counts.setdefault(session_id, {})[agent] = count
        return [
            SessionSummary(
                session_id=row.session_id,
                created_at=row.created_at,
                updated_at=row.updated_at,
                parent_session_id=row.parent_session_id,
                branch_point_message_id=row.branch_point_message_id,
                message_counts=counts.get(row.session_id, {}),
            )
            for row in rows
        ]

    async def agents(self, session_id: str) -> list[str]:
        """Agents with messages visible in the session."""
        async with self._runtime.sessions() as session:
            lineage = await _lineage(session, session_id)
            if not lineage:
                raise SessionError(f"no session {session_id!r}")
            names = await session.scalars(
                select(MessageRow.agent_name).where(_visible(lineage)).distinct()
            )
            return sorted(names)

    async def resolve_agent(self, session_id: str, agent_name: str | None) -> str:
        """`agent_name` (which must have messages in the session), or the session's only
        agent when none is named."""
        agents = await self.agents(session_id)
        if agent_name is not None:
            if agent_name not in agents:
                raise SessionError(
                    f"agent {agent_name!r} has no messages in session {session_id!r} "
                    f"(its agents: {', '.join(agents) or 'none'})"
                )
            return agent_name
        if len(agents) != 1:
            raise SessionError(
                f"session {session_id!r} has agents {', '.join(agents) or 'none'}: "
                "name one with --agent"
            )
        return agents[0]

    async def fork(
        self,
        session_id: str,
        *,
        at_sequence: int,
        agent_name: str | None = None,
        new_session_id: str | None = None,
    ) -> str:
        """A new session sharing the history up to message `at_sequence` of `agent_name`
        (every agent's messages up to that point), without copying rows."""
        agent_name = await self.resolve_agent(session_id, agent_name)
        history = await self.load(session_id, agent_name)
        point = next((m for m in history if m.sequence == at_sequence), None)
        if point is None:
            last = history[-1].sequence if history else 0
            raise SessionError(
                f"agent {agent_name!r} in session {session_id!r} has no message {at_sequence} "
                f"(it has 1..{last})"
            )
        child = new_session_id or make_session_id()
        async with self._runtime.sessions.begin() as session:
            if await session.get(SessionRow, child) is not None:
                raise SessionError(f"session {child!r} exists already")
            session.add(
                SessionRow(
                    session_id=child,
                    parent_session_id=session_id,
                    branch_point_message_id=point.message_id,
                )
            )
        return child

    async def delete(self, session_id: str, *, apply: bool = True) -> int:
        """Delete a session and its messages; refused while branches depend on it. Returns
        how many messages went; with `apply=False` only checks and counts."""
        async with self._runtime.sessions.begin() as session:
            if await session.get(SessionRow, session_id) is None:
                raise SessionError(f"no session {session_id!r}")
            branches = list(
                await session.scalars(
                    select(SessionRow.session_id).where(SessionRow.parent_session_id == session_id)
                )
            )
            if branches:
                raise SessionError(
                    f"session {session_id!r} cannot be deleted: branches share its history: "
                    + ", ".join(sorted(branches))
                )
            if not apply:
                return int(
                    await session.scalar(
                        select(func.count()).where(MessageRow.session_id == session_id)
                    )
                    or 0
                )
            removed = await session.execute(
                delete(MessageRow).where(MessageRow.session_id == session_id)
            )
            await session.execute(delete(SessionRow).where(SessionRow.session_id == session_id))
            return removed.rowcount or 0

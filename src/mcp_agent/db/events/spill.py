"""Spill files: events kept on local disk while the database cannot take them.

One directory per database (`spill_directory`); one file per spilled batch, one JSON object
per line, its state in its name:

* `events-<uuid>.writing-<worker>`: being written; renamed to `.jsonl` once complete, so no
  process ever replays half a file;
* `events-<uuid>.jsonl`: waiting to be replayed, by any process using the database;
* `events-<uuid>.replaying-<worker>`: claimed by the worker (`host:pid`) replaying it. Renaming
  is atomic, so one process wins each file. A worker of this host that died leaves an orphan,
  which the next replaying process claims;
* `events-<uuid>.quarantined`: refused for a reason other than connectivity (not JSON, not an
  event, or rejected by the database); kept for a person to look at, never retried.

The `<uuid>` part is the file's spill id: a replay stores it in `fa_event_spills` in the same
transaction as the file's events, so a file replayed twice is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.workers import is_dead_local_worker, this_worker

#: Where batches wait while the database is unreachable, per database.
SPILL_ROOT_ENV = "FAST_AGENT_DB_SPILL_DIR"

WAITING = "jsonl"
WRITING = "writing-"
REPLAYING = "replaying-"
QUARANTINED = "quarantined"

_SPILL_ID = re.compile(r"^events-[0-9a-f]{32}$")
_TEXT_FIELDS = ("level", "namespace", "message")
_OPTIONAL_TEXT_FIELDS = ("name", "session_id", "execution_id", "agent_name", "trace_id", "span_id")
_FIELDS = frozenset(field.name for field in fields(EventRecord))

# Files this process is writing or replaying right now. A file named after this worker and not
# in here was left by an earlier process that had the same pid (containers reuse pids).
_in_use: set[str] = set()
_in_use_lock = threading.Lock()


def spill_directory(database_url: str) -> Path:
    root = Path(os.environ.get(SPILL_ROOT_ENV) or Path.home() / ".fast-agent-db" / "spill")
    return root / hashlib.sha256(database_url.encode()).hexdigest()[:16]


class SpillFormatError(ValueError):
    """A spill file that does not hold events; the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class Spill:
    """A spill file's events and the id that makes storing them idempotent."""

    spill_id: str
    records: list[EventRecord]


def write_spill(directory: Path, records: list[EventRecord]) -> Path:
    """Write `records` to a new spill file, complete before it becomes visible to replays."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"events-{uuid.uuid4().hex}"
    writing = directory / f"{stem}.{WRITING}{this_worker()}"
    with _in_use_lock:
        _in_use.add(writing.name)
    try:
        # Private like the database itself: events hold conversation details.
        descriptor = os.open(writing, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "w", encoding="utf-8") as spill:
            spill.writelines(_line(record) for record in records)
        waiting = directory / f"{stem}.{WAITING}"
        writing.rename(waiting)
    except BaseException:
        writing.unlink(missing_ok=True)  # the caller still holds the batch
        raise
    finally:
        with _in_use_lock:
            _in_use.discard(writing.name)
    return waiting


def _line(record: EventRecord) -> str:
    values = record.as_dict()
    values["occurred_at"] = record.occurred_at.isoformat()
    return json.dumps(values, default=str) + "\n"


def claim_spills(directory: Path) -> list[Path]:
    """Claim every spill file waiting in `directory`, and the orphans of dead workers of this
    host, oldest first. Files being written by a worker that died are quarantined."""
    if not directory.is_dir():
        return []
    me = this_worker()
    claimed: list[tuple[float, Path]] = []
    orphans = 0
    for path in directory.iterdir():
        stem, _, state = path.name.partition(".")
        owner = state.partition("-")[2]
        if state.startswith(WRITING):
            if _left_behind(path, owner, me):
                reason = f"left incomplete by process {owner}, which stopped writing it"
                with contextlib.suppress(FileNotFoundError):  # finished meanwhile
                    quarantine(path, reason)
            continue
        if state.startswith(REPLAYING):
            if not _left_behind(path, owner, me):
                continue
            orphans += 1
        elif state != WAITING:
            continue
        try:
            modified = path.stat().st_mtime
            if owner == me:
                claimed.append((modified, path))  # _left_behind took it for this process
                continue
            target = path.with_name(f"{stem}.{REPLAYING}{me}")
            path.rename(target)  # atomic: one process wins each file
        except FileNotFoundError:
            release(path)
            continue  # claimed by another process meanwhile
        with _in_use_lock:
            _in_use.add(target.name)
        claimed.append((modified, target))
    if orphans:
        print(
            f"fast-agent-db: replaying {orphans} spill file(s) in {directory} left by "
            "processes that stopped while replaying them",
            file=sys.stderr,
        )
    return [path for _modified, path in sorted(claimed, key=lambda entry: entry[0])]


def _left_behind(path: Path, owner: str, me: str) -> bool:
    """Whether `path`, named after worker `owner`, was left by a process that is gone.

    A file named after this worker that this process is not using was left by an earlier
    process with the same pid; it is marked in use here before anyone else can take it.
    """
    if owner != me:
        return is_dead_local_worker(owner)
    with _in_use_lock:
        if path.name in _in_use:
            return False
        _in_use.add(path.name)
        return True


def release(path: Path) -> None:
    """Forget a claimed file this process has finished with (stored, given back or set aside)."""
    with _in_use_lock:
        _in_use.discard(path.name)


def give_back(path: Path) -> None:
    """Return a claimed file unreplayed, for this or another process to try again later."""
    stem = path.name.partition(".")[0]
    try:
        path.rename(path.with_name(f"{stem}.{WAITING}"))
    finally:
        release(path)


def remove_replayed(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    finally:
        release(path)


def quarantine(path: Path, reason: str) -> Path:
    """Set a spill file aside for good, saying on stderr which file and why."""
    stem = path.name.partition(".")[0]
    target = path.with_name(f"{stem}.{QUARANTINED}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{stem}-{number}.{QUARANTINED}")
    try:
        path.rename(target)
    finally:
        release(path)
    print(
        f"fast-agent-db: quarantined the events spill file {target}: {reason}. Its events are "
        f"not in the database; once it is corrected, rename it to {stem}.{WAITING} and the "
        "next run stores them.",
        file=sys.stderr,
    )
    return target


def read_spill(path: Path) -> Spill:
    """The events of a spill file.

    Raises:
        SpillFormatError: a line is not JSON or not an event; the message says which and why.
    """
    content = path.read_bytes()
    stem = path.name.partition(".")[0]
    # Files from before spill ids (`events-<pid>.jsonl`, appended to by one process) are
    # told apart by their content.
    spill_id = stem if _SPILL_ID.match(stem) else f"{stem}-{hashlib.sha256(content).hexdigest()}"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpillFormatError(f"not UTF-8 text (byte {error.start})") from None
    records = [
        _record(line, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    return Spill(spill_id=spill_id[:100], records=records)


def _record(line: str, number: int) -> EventRecord:
    where = f"line {number}"
    try:
        values = json.loads(line)
    except json.JSONDecodeError as error:
        raise SpillFormatError(f"{where}: not JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(values, dict):
        raise SpillFormatError(f"{where}: not an event object (got {_kind(values)})")
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise SpillFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("occurred_at", *_TEXT_FIELDS):
        if not isinstance(values.get(name), str):
            raise SpillFormatError(f"{where}: {name} must be text, got {_kind(values.get(name))}")
    for name in _OPTIONAL_TEXT_FIELDS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise SpillFormatError(f"{where}: {name} must be text or null, got {_kind(value)}")
    data = values.get("data")
    if data is not None and not isinstance(data, dict):
        raise SpillFormatError(f"{where}: data must be an object or null, got {_kind(data)}")
    try:
        occurred_at = datetime.fromisoformat(values["occurred_at"])
    except ValueError:
        occurred_at = None
    if occurred_at is None or occurred_at.tzinfo is None:
        raise SpillFormatError(
            f"{where}: occurred_at {values['occurred_at'][:40]!r} is not an ISO timestamp "
            "with a time zone"
        )
    return EventRecord(**{**values, "occurred_at": occurred_at})


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_KINDS.get(type(value), "a number")

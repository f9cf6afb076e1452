"""Nothing lost (issue #13): every event accepted ends in fa_events or in a spill file.

Reproduces the adversarial trial's findings on both backends: 60,000 events logged while the
database is unreachable (all spilled on close, SIGTERM and Ctrl-C, then all stored by the next
start, none twice), also with SIGINT ignored (a background job) and with a SIGTERM during the
Ctrl-C shutdown; a close the database neither answers nor fails (a lock on fa_events) spilling
after a bounded wait; a replay killed with SIGKILL (its orphaned files claimed by the next
process, counts exact); spill files that are not events or that the database refuses
(quarantined with a message, the good files still stored); the writer's queue bounded.

"Unreachable" is real on both backends: PostgreSQL refuses connections to the test's database
(ALLOW_CONNECTIONS false, open connections terminated); a SQLite file is locked by another
writer, so writes fail with "database is locked" once the busy timeout runs out (shortened
here, or each attempt would wait 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from mcp_agent.db import engine
from mcp_agent.db.events.base import EventRecord
from mcp_agent.db.events.capture import EventWriter
from mcp_agent.db.events.shutdown import interrupt_on_sigterm, restore_sigterm
from mcp_agent.db.events.spill import (
    SPILL_ROOT_ENV,
    read_spill,
    spill_directory,
    write_spill,
)
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.models import EventRow
from mcp_agent.db.models.events import EventSpillRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.workers import this_worker
from tests.support.processes import GUARD_S

ROOT = Path(__file__).resolve().parents[1]
VOLUME = 60_000
NAMESPACE = "tests.flood"


def flood_record(number: int) -> EventRecord:
    return EventRecord(
        occurred_at=datetime.now(UTC),
        level="info",
        namespace=NAMESPACE,
        message=f"event {number}",
        data={"number": number},
        session_id="flood",
    )


def each_once(count: int) -> Counter[str]:
    return Counter(f"event {number}" for number in range(count))


@pytest.fixture
def spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """The database's spill directory, under the test's own root (for subprocesses too)."""
    monkeypatch.setenv(SPILL_ROOT_ENV, str(tmp_path / "spill"))
    return spill_directory(database_url)


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A locked SQLite file fails a write after 0.2 s instead of 30 s (the engine reads this
    when it opens a connection)."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)


def _admin_url(request: pytest.FixtureRequest) -> str:
    server_url = request.getfixturevalue("postgres_databases").server_url
    return make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _allow_connections(admin_url: str, database: str, allowed: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )


def _lock_sqlite(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")  # the write lock; readers still read (WAL)
    return connection


@contextlib.asynccontextmanager
async def database_outage(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The database stops taking writes until the block ends (see the module docstring)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        lock = await asyncio.to_thread(_lock_sqlite, str(url.database))
        try:
            yield
        finally:
            await asyncio.to_thread(lock.close)  # rolls back: the lock is gone
        return
    admin = _admin_url(request)
    await asyncio.to_thread(_allow_connections, admin, str(url.database), False)
    try:
        yield
    finally:
        await asyncio.to_thread(_allow_connections, admin, str(url.database), True)


async def stored_messages(database_url: str, namespace: str = NAMESPACE) -> Counter[str]:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            messages = await session.scalars(
                select(EventRow.message).where(EventRow.namespace == namespace)
            )
            return Counter(messages)


async def count_rows(database_url: str, row: type) -> int:
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(row)) or 0)


def spilled_messages(directory: Path, namespace: str = NAMESPACE) -> Counter[str]:
    """Messages in the spill files waiting to be replayed."""
    found: Counter[str] = Counter()
    for path in directory.glob("*.jsonl"):
        found.update(r.message for r in read_spill(path).records if r.namespace == namespace)
    return found


async def replay_by_the_next_start(database_url: str, directory: Path) -> EventWriter:
    """What the next run does first: a writer starts, which stores every spill file."""
    async with await DatabaseRuntime.open(database_url) as runtime:
        writer = EventWriter(SqlEventSink(runtime), spill_dir=directory)
        await writer.start()
        await writer.close()
    return writer


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []


# --- 60,000 events while the database is unreachable ------------------------------------


@pytest.mark.slow
async def test_sixty_thousand_events_during_an_outage_are_spilled_then_stored_once(
    database_url: str,
    spill_dir: Path,
    short_busy_timeout: None,
    request: pytest.FixtureRequest,
) -> None:
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=spill_dir, flush_interval=0.05)
        await writer.start()
        async with database_outage(database_url, request):
            for number in range(VOLUME):
                await writer.submit(flood_record(number))
            await writer.close()

    assert (writer.written, writer.spilled) == (0, VOLUME)
    assert writer.peak_pending <= writer.max_pending
    assert spilled_messages(spill_dir) == each_once(VOLUME)

    next_start = await replay_by_the_next_start(database_url, spill_dir)

    assert next_start.replayed == VOLUME
    assert await stored_messages(database_url) == each_once(VOLUME)
    assert _files(spill_dir) == []


# A process that is logging, stopped by a signal: SIGTERM takes the same way out as Ctrl-C.
FLOOD_SCRIPT = """
import asyncio, os, signal, sys

from mcp_agent.db import engine

engine.SQLITE_BUSY_TIMEOUT_MS = 200  # the test locks a SQLite database: fail fast

from mcp_agent.db import FastAgent
from mcp_agent.logging.events import Event
from mcp_agent.logging.transport import AsyncEventBus


fast = FastAgent("flood", parse_cli_args=False, database_url=sys.argv[1])


@fast.agent(name="idle", model="passthrough")
async def idle() -> None: ...


async def main(count):
    async with fast.run():
        print("running", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the database is unreachable now
        bus = AsyncEventBus.get()
        for number in range(count):
            event = Event(type="info", namespace="tests.flood", message=f"event {number}")
            await bus.emit(event)
        print("logged", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            if sys.argv[3:] == ["--sigterm-while-stopping"]:
                # A process manager's SIGTERM while the run stops after Ctrl-C (here, before
                # its exit path has begun; asyncio already counts one Ctrl-C).
                os.kill(os.getpid(), signal.SIGTERM)


try:
    asyncio.run(main(int(sys.argv[2])))
except KeyboardInterrupt:
    sys.exit(130)
"""


#: Starts a command with SIGINT as argv[1] says, whatever this process inherited: a terminal
#: gives its foreground job SIGINT's default (Python's KeyboardInterrupt), while every process
#: of a background job started by a script (`pytest ... &`) inherits SIGINT ignored, so a
#: child of such a test run would ignore SIGINT too. exec keeps SIG_DFL and SIG_IGN as set.
LAUNCHER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


class Child:
    """A Python child process, its stdout and stderr in files (a pipe nobody reads any more
    fills up and stops the child), waited on for a line or for its exit under GUARD_S."""

    def __init__(
        self, args: list[str], directory: Path, *, sigint: str = "SIG_DFL", **popen: object
    ) -> None:
        self.stdout = directory / "child-stdout.txt"
        self.stderr = directory / "child-stderr.txt"
        with self.stdout.open("w") as stdout, self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, sigint, *args],
                stdout=stdout,
                stderr=stderr,
                text=True,
                **popen,  # type: ignore[call-overload]
            )

    def output(self) -> str:
        """What the child wrote, for failure messages."""
        return (
            f"exit status {self.process.poll()}\n--- stdout ---\n{self.stdout.read_text()}"
            f"\n--- stderr ---\n{self.stderr.read_text()}"
        )

    async def line(self, expected: str) -> None:
        """Wait until the child prints `expected` as a line of its own."""

        async def printed() -> None:
            while True:
                lines = await asyncio.to_thread(lambda: self.stdout.read_text().splitlines())
                if expected in (line.strip() for line in lines):
                    return
                if self.process.poll() is not None:
                    pytest.fail(f"exited before printing {expected!r}:\n{self.output()}")
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(printed(), GUARD_S)
        except TimeoutError:
            pytest.fail(f"{expected!r} not printed within {GUARD_S} s:\n{self.output()}")

    async def exit(self) -> int:
        """Wait for the child to exit; its exit status."""
        try:
            return await asyncio.to_thread(self.process.wait, GUARD_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GUARD_S} s later:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "sigint", "options"),
    [
        pytest.param(signal.SIGTERM, "SIG_DFL", [], id="SIGTERM"),
        pytest.param(signal.SIGINT, "SIG_DFL", [], id="SIGINT"),
        # A background job of a script: Ctrl-C does not reach it, SIGTERM still stops it the
        # Ctrl-C way (asyncio does not turn Ctrl-C into a cancellation there).
        pytest.param(signal.SIGTERM, "SIG_IGN", [], id="SIGTERM-SIGINT_ignored"),
        # A SIGTERM is not a second Ctrl-C: the way out goes on, nothing cut short.
        pytest.param(
            signal.SIGINT, "SIG_DFL", ["--sigterm-while-stopping"], id="SIGINT-then-SIGTERM"
        ),
    ],
)
async def test_a_logging_process_stopped_by_a_signal_keeps_every_event_it_accepted(
    database_url: str,
    spill_dir: Path,
    tmp_path: Path,
    stop: signal.Signals,
    sigint: str,
    options: list[str],
    request: pytest.FixtureRequest,
) -> None:
    child = Child(
        ["-c", FLOOD_SCRIPT, database_url, str(VOLUME), *options],
        tmp_path,
        sigint=sigint,
        cwd=tmp_path,  # no fastagent.config.yaml to find
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
    )
    try:
        await child.line("running")
        async with database_outage(database_url, request):
            stdin = child.process.stdin
            assert stdin is not None
            stdin.write("go\n")
            stdin.flush()
            await child.line("logged")
            child.process.send_signal(stop)
            returncode = await child.exit()
    finally:
        child.kill()
    output = child.output()

    assert returncode == 130, output  # the Ctrl-C way out, for SIGTERM too
    assert "Traceback" not in output, output
    assert spilled_messages(spill_dir) == each_once(VOLUME), output

    await replay_by_the_next_start(database_url, spill_dir)

    assert await stored_messages(database_url) == each_once(VOLUME)
    assert _files(spill_dir) == []


def _own_sigterm_handler(signum: int, frame: object) -> None:
    raise AssertionError("not called: no signal is sent")


async def test_a_program_that_handles_sigterm_itself_keeps_its_handler() -> None:
    # Whatever this test process has (the embedded PostgreSQL's fixture handles SIGTERM while
    # its server runs) comes back at the end.
    outer = signal.signal(signal.SIGTERM, _own_sigterm_handler)
    try:
        assert interrupt_on_sigterm() is None
        assert signal.getsignal(signal.SIGTERM) is _own_sigterm_handler
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        installed = interrupt_on_sigterm()
        assert installed is not None and signal.getsignal(signal.SIGTERM) is installed
        restore_sigterm(installed)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, outer)


# --- a replay killed midway --------------------------------------------------------------

REPLAY_SCRIPT = """
import asyncio, sys

from mcp_agent.db.events.capture import EventWriter, spill_directory
from mcp_agent.db.events.sql import SqlEventSink
from mcp_agent.db.runtime import DatabaseRuntime


async def main(url):
    async with await DatabaseRuntime.open(url) as runtime:
        writer = EventWriter(SqlEventSink(runtime), spill_dir=spill_directory(url))
        await writer.start()
        await writer.close()


asyncio.run(main(sys.argv[1]))
"""

BATCH = 2000


def _spill_in_batches(directory: Path, count: int) -> None:
    for start in range(0, count, BATCH):
        write_spill(directory, [flood_record(n) for n in range(start, min(start + BATCH, count))])


def _hold_write_lock(database_url: str) -> Callable[[], None]:
    """Block the replay's writes: SQLite's write lock, or on PostgreSQL a SHARE lock on
    fa_events (the replay's spill row goes in, then its COPY waits). Returns the release."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _lock_sqlite(str(url.database)).close
    connection = psycopg.connect(_libpq(database_url))
    connection.execute("LOCK TABLE fa_events IN SHARE MODE")
    return connection.close


def _waiting_on_a_lock(database_url: str) -> bool:
    database = make_url(database_url).database
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND wait_event_type = 'Lock' AND query LIKE 'COPY fa_events%%'",
            (database,),
        ).fetchone()
    return bool(row and row[0])


async def _wait_for(condition: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), GUARD_S)
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


@pytest.mark.slow
async def test_a_replay_killed_midway_is_finished_by_the_next_process_exactly_once(
    database_url: str, spill_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    await asyncio.to_thread(_spill_in_batches, spill_dir, VOLUME)
    files = len(_files(spill_dir))
    release = await asyncio.to_thread(_hold_write_lock, database_url)
    stderr_path = tmp_path / "replayer.txt"
    try:
        with stderr_path.open("w") as stderr:
            replayer = subprocess.Popen(
                [sys.executable, "-c", REPLAY_SCRIPT, database_url],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=stderr,
                stderr=stderr,
            )
        claimed_by_it = f".replaying-{socket.gethostname()}:{replayer.pid}"
        await _wait_for(
            lambda: sum(name.endswith(claimed_by_it) for name in _files(spill_dir)) == files,
            "the replayer claims every file",
        )
        if make_url(database_url).get_backend_name() == "postgresql":
            # Its transaction is open: the spill row inserted, the COPY waiting.
            await _wait_for(lambda: _waiting_on_a_lock(database_url), "the replay's COPY waits")
        replayer.send_signal(signal.SIGKILL)
        await asyncio.to_thread(replayer.wait, GUARD_S)
    finally:
        await asyncio.to_thread(release)
    assert replayer.returncode == -signal.SIGKILL, stderr_path.read_text()
    orphans = [name for name in _files(spill_dir) if name.endswith(claimed_by_it)]
    assert len(orphans) == files, _files(spill_dir)
    assert await count_rows(database_url, EventRow) == 0  # its transaction rolled back

    next_start = await replay_by_the_next_start(database_url, spill_dir)

    assert next_start.replayed == VOLUME
    assert await stored_messages(database_url) == each_once(VOLUME)
    assert await count_rows(database_url, EventSpillRow) == files
    assert _files(spill_dir) == []
    assert "left by processes that stopped while replaying them" in capfd.readouterr().err


async def test_closing_while_the_database_does_not_answer_spills_after_a_bounded_wait(
    database_url: str, spill_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's exit does not hang on a database that neither answers nor fails: PostgreSQL's
    COPY waits for a lock on fa_events forever, SQLite for its busy timeout (longer here than
    the writer's wait). Past `close_timeout`, the write is cancelled and everything spilled."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 3000)
    total = 5000
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=spill_dir, close_timeout=0.5)
        await writer.start()
        release = await asyncio.to_thread(_hold_write_lock, database_url)
        try:
            for number in range(total):
                await writer.submit(flood_record(number))
            # Not wait_for: close() lets a cancellation wait for it to finish.
            closing = asyncio.ensure_future(writer.close())
            if not (await asyncio.wait([closing], timeout=GUARD_S))[0]:
                pytest.fail(f"close still waiting for the database {GUARD_S} s later")
            await closing  # it returned with the lock still held
        finally:
            await asyncio.to_thread(release)

    assert (writer.written, writer.spilled) == (0, total)
    assert spilled_messages(spill_dir) == each_once(total)

    await replay_by_the_next_start(database_url, spill_dir)

    assert await stored_messages(database_url) == each_once(total)  # none twice
    assert _files(spill_dir) == []


async def _dead_pid() -> int:
    process = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-c", "pass"])
    await asyncio.to_thread(process.wait, GUARD_S)
    return process.pid


ORPHAN_OWNERS: list[tuple[str, Callable[[int], str], bool]] = [
    # (whose file, the worker named in it given a dead pid, whether the next start takes it)
    ("a dead process of this host", lambda dead: f"{socket.gethostname()}:{dead}", True),
    ("a dead process, named before worker ids had a host", lambda dead: str(dead), True),
    ("an earlier process that had this process's pid", lambda _dead: this_worker(), True),
    ("a live process of this host", lambda _dead: f"{socket.gethostname()}:{os.getppid()}", False),
    ("a process of another host", lambda dead: f"elsewhere.invalid:{dead}", False),
]


@pytest.mark.parametrize(
    ("owner", "claimed"),
    [pytest.param(owner, claimed, id=case) for case, owner, claimed in ORPHAN_OWNERS],
)
async def test_replay_files_left_by_dead_processes_are_claimed_and_others_left_alone(
    database_url: str, spill_dir: Path, owner: Callable[[int], str], claimed: bool
) -> None:
    path = await asyncio.to_thread(write_spill, spill_dir, [flood_record(n) for n in range(100)])
    stem = path.name.partition(".")[0]
    left = path.rename(path.with_name(f"{stem}.replaying-{owner(await _dead_pid())}"))

    writer = await replay_by_the_next_start(database_url, spill_dir)

    if claimed:
        assert (writer.replayed, _files(spill_dir)) == (100, [])
        assert await stored_messages(database_url) == each_once(100)
    else:
        assert (writer.replayed, _files(spill_dir)) == (0, [left.name])
        assert await stored_messages(database_url) == Counter()


async def test_a_file_stored_just_before_its_replayer_died_is_not_stored_again(
    database_url: str, spill_dir: Path
) -> None:
    """Killed after its commit, before removing the file: the spill row stops the rerun."""
    stored_first = await asyncio.to_thread(
        write_spill, spill_dir, [flood_record(n) for n in range(500)]
    )
    spill = await asyncio.to_thread(read_spill, stored_first)
    async with await DatabaseRuntime.open(database_url) as runtime:
        assert await SqlEventSink(runtime).write_once(spill.spill_id, spill.records)
    stem = stored_first.name.partition(".")[0]
    stored_first.rename(stored_first.with_name(f"{stem}.replaying-{await _dead_pid()}"))
    await asyncio.to_thread(
        write_spill, spill_dir, [flood_record(n) for n in range(500, 800)]
    )  # another file, never stored

    writer = await replay_by_the_next_start(database_url, spill_dir)

    assert writer.replayed == 300
    assert await stored_messages(database_url) == each_once(800)
    assert _files(spill_dir) == []


# --- spill files that cannot be stored ---------------------------------------------------

GOOD_LINE = (
    '{"occurred_at": "2026-01-02T03:04:05+00:00", "level": "info", "namespace": "tests.flood", '
    '"message": "fine", "data": null}'
)


def _line(*, without: str | None = None, **changes: object) -> str:
    """GOOD_LINE with fields changed, or one left out."""
    values = {**json.loads(GOOD_LINE), **changes}
    values.pop(without, None)
    return json.dumps(values)


# (case, the bad file's name state, its content, what the message says)
BAD_FILES: list[tuple[str, str, bytes, str]] = [
    ("not JSON", "jsonl", f"{GOOD_LINE}\n{GOOD_LINE[:40]}\n".encode(), "line 2: not JSON"),
    ("not an event object", "jsonl", b"[1, 2, 3]\n", "line 1: not an event object"),
    ("a field missing", "jsonl", _line(without="message").encode(), "line 1: message must be text"),
    ("a field of the wrong type", "jsonl", _line(level=5).encode(), "level must be text"),
    ("an unknown field", "jsonl", _line(colour="red").encode(), "unknown field(s) colour"),
    (
        "a timestamp without a time zone",
        "jsonl",
        _line(occurred_at="2026-01-02T03:04:05").encode(),
        "is not an ISO timestamp with a time zone",
    ),
    ("not UTF-8", "jsonl", b"\xff\xfe\n", "not UTF-8"),
    (
        "a row the database refuses",
        "jsonl",
        f"{GOOD_LINE}\n{_line(message='poison')}\n".encode(),
        "the database refused it (",
    ),
    (
        "left half written by a process that died",
        "writing-{dead}",
        GOOD_LINE[:30].encode(),
        "left incomplete by process",
    ),
]

_REFUSE_POISON = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON fa_events WHEN NEW.message = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poison event refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.message = 'poison' THEN RAISE EXCEPTION 'poison event refused' "
        "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON fa_events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}


async def refuse_poison_events(database_url: str) -> None:
    """A real constraint of the database: it refuses any event whose message is 'poison'."""
    async with await DatabaseRuntime.open(database_url) as runtime:
        async with runtime.engine.begin() as connection:
            for statement in _REFUSE_POISON[runtime.dialect]:
                await connection.execute(text(statement))


@pytest.mark.parametrize(
    ("state", "content", "says"),
    [pytest.param(state, content, says, id=case) for case, state, content, says in BAD_FILES],
)
async def test_a_spill_file_that_cannot_be_stored_is_quarantined_and_the_others_stored(
    database_url: str,
    spill_dir: Path,
    state: str,
    content: bytes,
    says: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    await refuse_poison_events(database_url)
    before = await asyncio.to_thread(write_spill, spill_dir, [flood_record(n) for n in range(50)])
    bad = spill_dir / f"events-{'b' * 32}.{state.format(dead=await _dead_pid())}"
    bad.write_bytes(content)
    await asyncio.to_thread(write_spill, spill_dir, [flood_record(n) for n in range(50, 120)])
    os.utime(before, (1, 1))  # oldest first: the bad file sits between two good ones
    os.utime(bad, (2, 2))

    writer = await replay_by_the_next_start(database_url, spill_dir)

    assert writer.replayed == 120
    assert await stored_messages(database_url) == each_once(120)
    quarantined = spill_dir / f"events-{'b' * 32}.quarantined"
    assert _files(spill_dir) == [quarantined.name]
    assert quarantined.read_bytes() == content  # kept as it was, for a person to look at
    message = capfd.readouterr().err
    assert f"quarantined the events spill file {quarantined}: " in message, message
    assert says in message, message
    assert "Traceback" not in message

    again = await replay_by_the_next_start(database_url, spill_dir)  # never retried

    assert again.replayed == 0 and _files(spill_dir) == [quarantined.name]
    assert "quarantined" not in capfd.readouterr().err


async def test_a_live_batch_the_database_refuses_is_quarantined_and_the_rest_stored(
    database_url: str, spill_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    await refuse_poison_events(database_url)
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=spill_dir, batch_size=100)
        await writer.start()
        for number in range(300):
            record = flood_record(number)
            await writer.submit(replace(record, message="poison") if number == 150 else record)
        await writer.close()

    assert (writer.written, writer.quarantined, writer.spilled) == (200, 100, 0)
    stored = await stored_messages(database_url)
    assert stored == each_once(100) + Counter(f"event {n}" for n in range(200, 300))
    [quarantined] = _files(spill_dir)
    assert quarantined.endswith(".quarantined")
    assert len(read_spill(spill_dir / quarantined).records) == 100
    message = capfd.readouterr().err
    assert "the database refused the batch" in message and "poison event refused" in message


async def test_when_the_disk_refuses_too_the_events_wait_in_memory_for_the_database(
    database_url: str,
    tmp_path: Path,
    short_busy_timeout: None,
    request: pytest.FixtureRequest,
    capfd: pytest.CaptureFixture[str],
) -> None:
    not_a_directory = tmp_path / "a file"
    not_a_directory.write_text("")
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(
            sink, spill_dir=not_a_directory / "spill", batch_size=10, max_pending=100
        )
        await writer.start()
        async with database_outage(database_url, request):
            for number in range(500):
                await writer.submit(flood_record(number))
        await writer.close()  # the database answers again

    assert writer.peak_pending > writer.max_pending  # kept past the bound, not dropped
    assert (writer.written, writer.spilled) == (500, 0)
    assert await stored_messages(database_url) == each_once(500)
    message = capfd.readouterr().err
    assert f"cannot write events to {not_a_directory / 'spill'}" in message
    assert "they are lost" not in message


# --- bounded memory ------------------------------------------------------------------------


@pytest.mark.parametrize("answering", [True, False], ids=["database answers", "database down"])
async def test_the_queue_never_grows_past_its_limit(
    database_url: str,
    spill_dir: Path,
    short_busy_timeout: None,
    answering: bool,
    request: pytest.FixtureRequest,
) -> None:
    """A producer faster than the database waits for the writer; while the database is down,
    it spills the oldest batch itself. Either way the queue stays within `max_pending`."""
    total = 20_000
    async with await DatabaseRuntime.open(database_url) as runtime:
        sink = SqlEventSink(runtime)
        await sink.ensure_partitions()
        writer = EventWriter(sink, spill_dir=spill_dir, batch_size=100, max_pending=500)
        await writer.start()
        outage = contextlib.nullcontext() if answering else database_outage(database_url, request)
        async with outage:
            for number in range(total):
                await writer.submit(flood_record(number))
            await writer.close()

    assert writer.peak_pending == writer.max_pending  # reached, never passed
    assert writer.written + writer.spilled == total
    if answering:
        assert writer.spilled == 0
        assert await stored_messages(database_url) == each_once(total)
    else:
        assert writer.written == 0
        assert spilled_messages(spill_dir) == each_once(total)

"""SIGTERM stops a run the way Ctrl-C does, so the run's exit path stores its events.

Python's default for SIGTERM ends the process on the spot, and whatever the event writer still
held was lost. While installed, a SIGTERM does what `asyncio.run` does on Ctrl-C: the run's
task is cancelled, so `finally` blocks run and the writer closes, and once that task has
ended, `KeyboardInterrupt` is raised out of the event loop (so `asyncio.run` raises it, and a
program exits as on Ctrl-C: 130). Later SIGTERMs are ignored while that shutdown runs (a
process manager that cannot wait sends SIGKILL).

This does not depend on how SIGINT is handled. Asyncio only turns Ctrl-C into a cancellation
when SIGINT has Python's default handler; a process that inherited SIGINT ignored (a
background job started by a script, `command &`, ignores Ctrl-C as every program does) has
no such handler, and a cancellation asyncio did not start ends `asyncio.run` with a
`CancelledError` traceback and exit status 1 rather than `KeyboardInterrupt`. So SIGTERM never
goes through SIGINT: it is handled like asyncio's own SIGINT handler, by a Python-level signal
handler that cancels the task at once (no loop callback that could still be pending, and so
lost, when the handler is restored).

Nothing is installed outside the main thread (signals reach only that one) or when the program
handles SIGTERM itself.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from types import FrameType


@dataclass(slots=True)
class SigtermHandler:
    """What `interrupt_on_sigterm` installed, for `restore_sigterm`."""

    loop: asyncio.AbstractEventLoop
    run_task: asyncio.Task[object]
    #: A SIGTERM came: the run task was cancelled, and ends in KeyboardInterrupt.
    stopping: bool = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, possibly inside the event loop's own
        # code, as asyncio's SIGINT handler does: only cancel, schedule and wake the loop.
        if self.stopping:
            return
        self.stopping = True
        if self.run_task.done():
            raise KeyboardInterrupt  # nothing left to stop cleanly
        self.run_task.add_done_callback(_interrupt_when_stopped)
        self.run_task.cancel()
        # The loop may be waiting in select() with a long timeout: wake it.
        self.loop.call_soon_threadsafe(_nothing)


def _nothing() -> None:
    pass


def _interrupt_when_stopped(task: asyncio.Task[object]) -> None:
    """After the run's task has ended (its exit path done), stop the loop the Ctrl-C way.

    Raised from a loop callback, KeyboardInterrupt leaves `run_until_complete` (asyncio.run's
    runner scheduled its own callback first, so the loop stops there anyway). A task that
    ended with an error of its own keeps it: that is what the program reports.
    """
    if task.cancelled() or task.exception() is None:
        raise KeyboardInterrupt


def interrupt_on_sigterm() -> SigtermHandler | None:
    """From now on, SIGTERM stops the current task's run as Ctrl-C would (see the module)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # the program has its own way of stopping
    run_task = asyncio.current_task()
    if run_task is None:
        return None
    handler = SigtermHandler(loop=asyncio.get_running_loop(), run_task=run_task)
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # signals not available in this interpreter (embedded, gh-91880)
        return None
    return handler


def restore_sigterm(handler: SigtermHandler | None) -> None:
    """Back to SIGTERM's default, if `interrupt_on_sigterm` installed `handler`.

    A SIGTERM that arrived before this call has been handled already (Python runs a pending
    signal handler before the next call in the main thread), so none is lost in between.
    """
    if handler is not None and signal.getsignal(signal.SIGTERM) is handler:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

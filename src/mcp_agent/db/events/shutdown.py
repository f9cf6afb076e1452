"""SIGTERM stops a run the way Ctrl-C does, so the run's exit path stores its events.

Python's default for SIGTERM ends the process on the spot, and whatever the event writer still
held was lost. While installed, a SIGTERM raises SIGINT instead, which asyncio turns into the
cancellation of the main task, as on Ctrl-C: `finally` blocks run and the writer closes. Later
SIGTERMs are ignored while that shutdown runs (a process manager that cannot wait sends
SIGKILL). Nothing is installed outside the main thread (signals reach only that one) or when
the program handles SIGTERM itself.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass


@dataclass(slots=True)
class SigtermHandler:
    """What `interrupt_on_sigterm` installed, for `restore_sigterm`."""

    loop: asyncio.AbstractEventLoop
    run_task: asyncio.Task[object] | None
    stopping: bool = False

    def __call__(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            # Raising SIGINT would do nothing, or end the process as abruptly as SIGTERM.
            if self.run_task is not None:
                self.run_task.cancel()
            return
        signal.raise_signal(signal.SIGINT)


def interrupt_on_sigterm() -> SigtermHandler | None:
    """From now on, SIGTERM stops the current task's run as Ctrl-C would (see the module)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # the program has its own way of stopping
    loop = asyncio.get_running_loop()
    handler = SigtermHandler(loop=loop, run_task=asyncio.current_task())
    try:
        loop.add_signal_handler(signal.SIGTERM, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # e.g. Windows' event loops
        return None
    return handler


def restore_sigterm(handler: SigtermHandler | None) -> None:
    """Back to SIGTERM's default, if `interrupt_on_sigterm` installed `handler`."""
    if handler is not None:
        handler.loop.remove_signal_handler(signal.SIGTERM)

"""Which process owns something left on disk or in the database, and whether it still lives.

A worker id is `host:pid`. Only workers of this host can be judged: a process elsewhere may
be alive, so its leftovers are never taken over from here.
"""

from __future__ import annotations

import os
import socket


def this_worker() -> str:
    """This process's worker id (read on each call: a forked child has a pid of its own)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead_local_worker(worker_id: str) -> bool:
    """True only for a worker of this host whose process no longer exists.

    A bare pid (no host) means this host: spill files named before worker ids carried one.
    """
    host, _, pid = worker_id.rpartition(":")
    if host and host != socket.gethostname():
        return False
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False

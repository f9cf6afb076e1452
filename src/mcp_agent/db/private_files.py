"""Files only their owner may read: SQLite databases and event spill files hold conversation
text, settings and event data, so they are created 0600 (directories 0700) whatever the umask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

#: Owner read and write, nothing for group and others.
PRIVATE_FILE_MODE = 0o600
#: Owner only, for directories that hold private files.
PRIVATE_DIRECTORY_MODE = 0o700


def create_private_file(path: Path) -> bool:
    """Create `path` empty and 0600 if it does not exist; whether this call created it.

    An existing file is left as it is (its contents and its mode). Blocking: async code calls
    it through `asyncio.to_thread`.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def open_private_text(path: Path, mode: str = "w") -> IO[str]:
    """`path.open(mode, encoding="utf-8")` for writing ("w", "a" or "x"), the file created 0600.

    A file that exists already is narrowed to 0600 as well, so a spill file written by an
    older version does not stay readable by others once it is appended to.
    """
    flags = {"w": os.O_TRUNC, "a": os.O_APPEND, "x": os.O_EXCL}
    if mode not in flags:
        raise ValueError(f"open_private_text: mode must be 'w', 'a' or 'x', not {mode!r}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | flags[mode], PRIVATE_FILE_MODE)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, whose files have no such mode bits
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
        return os.fdopen(descriptor, "a" if mode == "a" else "w", encoding="utf-8")
    except BaseException:
        os.close(descriptor)
        raise


def make_private_directory(path: Path) -> None:
    """`path.mkdir(parents=True, exist_ok=True)`, `path` itself created 0700 (missing parents
    get the default mode, as `Path.mkdir` gives them)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY_MODE)

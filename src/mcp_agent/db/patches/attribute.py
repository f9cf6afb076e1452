"""Replacing one attribute of an upstream module or class for as long as someone needs it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Stands for "the owner had no attribute of its own" (it inherited it): released by deleting.
_INHERITED = object()


class AttributePatch:
    """`owner.name` replaced by `build(original)` while at least one holder has acquired it.

    Reference-counted: nested or concurrent database-backed runs in one process share one
    replacement, and upstream's original object (the very same one, a staticmethod stays a
    staticmethod) comes back when the last holder releases it.
    """

    def __init__(self, owner: Any, name: str, build: Callable[[Any], Any]) -> None:
        self.owner = owner
        self.name = name
        self._build = build
        self._holders = 0
        self._stored: Any = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._holders > 0

    def acquire(self) -> None:
        with self._lock:
            if self._holders == 0:
                stored = vars(self.owner).get(self.name, _INHERITED)
                replacement = self._build(getattr(self.owner, self.name))
                if isinstance(stored, staticmethod):
                    replacement = staticmethod(replacement)
                self._stored = stored
                setattr(self.owner, self.name, replacement)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0:
                if self._stored is _INHERITED:
                    delattr(self.owner, self.name)
                else:
                    setattr(self.owner, self.name, self._stored)
                self._stored = None

    @contextmanager
    def applied(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

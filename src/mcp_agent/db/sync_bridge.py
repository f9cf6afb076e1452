"""Running the async stores from upstream's synchronous entry points.

`FastAgent.__init__` is synchronous and may be called with or without an event loop
running in the thread, so the coroutine gets a private loop in a worker thread; the caller
blocks, as it would on any synchronous constructor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_blocking(coroutine: Coroutine[Any, Any, _T]) -> _T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fast-agent-db") as pool:
        return pool.submit(asyncio.run, coroutine).result()

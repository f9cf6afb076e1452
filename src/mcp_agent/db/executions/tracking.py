"""Which process runs which executions: this worker's id, the execution being run, and the
rows a dead worker of this host left `running`. The calls themselves are recorded by
`mcp_agent.db.turns.recorder.RunRecorder`."""

from __future__ import annotations

from mcp_agent.db import run_context
from mcp_agent.db.executions.base import ExecutionStore
from mcp_agent.db.workers import is_dead_local_worker, this_worker

_current_execution = run_context.current_execution

#: Identifies this process in fa_executions.worker_id, to find rows left by a dead worker.
WORKER_ID = this_worker()


def current_execution_id() -> str | None:
    return _current_execution.get()


async def interrupt_dead_workers(store: ExecutionStore) -> int:
    """Mark executions left `running` by processes of this host that no longer exist.

    Workers on other hosts are left alone: from here we cannot tell whether they are alive.
    """
    workers = await store.running_workers()
    return await store.mark_interrupted([w for w in workers if is_dead_local_worker(w)])

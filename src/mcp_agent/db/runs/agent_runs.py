"""Running a stored agent on a message in a session, in this process: the one code path of
the API's in-process run (POST /v1/sessions/{id}/runs) and of a worker's durable run
(`runs.execution.execute_claimed_run`), run as `fast-agent-db run AGENT -m ... --session ID`
runs it: the session's histories restored, every call recorded with its usage and turn, the
run's events written to the event log.
"""

from __future__ import annotations

import asyncio

from mcp_agent.db.errors import (
    DatabaseUnavailableError,
    LeaseLostError,
    RunCancelledError,
    SchemaOutOfDateError,
)
from mcp_agent.db.events.redaction import redact_text


class RunFailedError(Exception):
    """The agent's run failed (its configuration, its provider, a tool): not this process.

    `could_not_start`: upstream refused the configuration (a missing server or API key, an
    unknown model): another attempt would fail the same way.
    """

    def __init__(self, detail: str, *, could_not_start: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.could_not_start = could_not_start


def describe(error: BaseException) -> str:
    """`Type: message`, with secrets redacted."""
    return redact_text(f"{type(error).__name__}: {error}".strip().rstrip(":"))


async def run_stored_agent(
    raw_url: str, session_id: str, agent: str, message: str, model: str | None
) -> str:
    """The reply of `agent` to `message` in the session, run as `fast-agent-db run` runs it.

    Raises:
        RunFailedError: upstream refused the configuration, or the run raised (a turn the
            database refused included).
        LeaseLostError, RunCancelledError: a durable run stopped at a call boundary.
        DatabaseUnavailableError, SchemaOutOfDateError: the database cannot be used.
    """
    from mcp_agent.db.fastagent import FastAgent

    def new_app() -> FastAgent:
        fast = FastAgent(
            "fast-agent-db", database_url=raw_url, session_id=session_id, parse_cli_args=False
        )
        # No console to show progress, chat or a usage table on.
        fast.args.quiet = True
        if model:
            fast.args.model = model  # upstream's --model: for agents without a model of their own
        return fast

    # Its constructor reads the settings synchronously: off the event loop.
    fast = await asyncio.to_thread(new_app)
    try:
        await fast.load_definitions(agent)
        async with fast.run() as app:
            return await app[agent].send(message)
    except SystemExit as stopped:
        # Upstream reports a configuration it cannot run (a missing server or API key, an
        # unknown model) and raises SystemExit: caught here, inside the run's task, since a
        # SystemExit escaping a task stops the event loop, and the server with it.
        cause = stopped.__context__ or stopped
        raise RunFailedError(
            f"the run could not start: {describe(cause)}", could_not_start=True
        ) from None
    except (
        DatabaseUnavailableError,
        SchemaOutOfDateError,
        LeaseLostError,
        RunCancelledError,
        asyncio.CancelledError,
    ):
        raise  # not the run's own failure: the caller's to handle
    except Exception as error:
        raise RunFailedError(f"the run failed: {describe(error)}") from error
    finally:
        await fast.close_database()  # only left open when the run never started

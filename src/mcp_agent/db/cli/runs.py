"""`fast-agent-db runs ...`: durable runs, queued in the database for `fast-agent-db worker`.

A RUN_ID may be given as a unique prefix of at least four characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from mcp_agent.db.cli.durations import _AGE, UNITS_HELP, parse_age
from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
    write_data,
)
from mcp_agent.db.cli.options import (
    DatabaseUrlOption,
    agent_name_text,
    model_name_text,
    plain_text,
    session_option,
)
from mcp_agent.db.cli.output import console, error_console, fail, run_async
from mcp_agent.db.errors import InputError
from mcp_agent.db.limits import INTEGER_MAX
from mcp_agent.db.models.runs import RUN_STATUSES
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.runs.base import Run, RunStatus, RunSubmission
from mcp_agent.db.runs.sql import SqlRunStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.secrets import ENV_PREFIX
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(
    help="Durable runs: submit to the queue in the database (fast-agent-db worker runs them), "
    "list, show, cancel, wait. A RUN_ID may be a unique prefix (at least 4 characters).",
    no_args_is_help=True,
)

#: Who submits from the command line (idempotency keys are per caller).
CLI_CALLER = "cli"
#: Exit code of `runs wait` / `submit --wait` when --timeout passed with the run not ended.
EXIT_STILL_RUNNING = 3

RunIdArgument = Annotated[
    str, typer.Argument(help="The run's id, or a unique prefix of it.", metavar="RUN_ID")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Give up waiting after this many seconds (default: wait until it ends).",
        min=0,
    ),
]


def parse_deadline(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """`--deadline`: an age from now (`90s`, `30min`, `2h`) or an ISO timestamp with a zone.

    Raises:
        InputError: for anything else, or a time not in the future.
    """
    if text is None:
        return None
    now = now or utc_now()
    stripped = text.strip()
    if stripped[:1].isdigit() and _AGE.match(stripped.lower()):
        return now + parse_age(stripped, option="--deadline")
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise InputError(
            f"--deadline {text!r}",
            f"expected a time from now in {UNITS_HELP}, or an ISO timestamp with a zone "
            "(2026-12-05T18:00:00Z)",
        ) from None
    if parsed.tzinfo is None:
        raise InputError(
            f"--deadline {text!r}", "names no time zone: add one (Z for UTC, or +02:00)"
        )
    return parsed.astimezone(UTC)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def _short(text: str | None, width: int = 60) -> str:
    if text is None:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _open(database_url: str | None) -> Any:
    return DatabaseRuntime.open_existing(resolve_database_url(database_url))


def _print_ended(run: Run) -> None:
    """A waited-for run: its reply on stdout, or why not on stderr (and the exit code)."""
    if run.status == "completed":
        write_data(run.result or "")
        return
    fail(f"run {run.run_id} {run.status}: {run.error or 'no reason recorded'}")


async def _wait(store: SqlRunStore, run_id: str, timeout: float | None) -> Run:
    try:
        return await store.wait(run_id, timeout=timeout)
    except TimeoutError:
        run = await store.get(run_id)
        error_console.print(
            f"run {run.run_id} is still {run.status} after {timeout:g} s",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_STILL_RUNNING) from None


@app.command()
def submit(
    agent: Annotated[
        str,
        typer.Argument(
            help="The agent or workflow, defined in the database.", parser=agent_name_text
        ),
    ],
    message: Annotated[
        str, typer.Option("--message", "-m", help="The message to send it.", parser=plain_text)
    ],
    session: Annotated[
        str | None, session_option("Continue this session (default: a new one for the run).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="The model, for agents whose definition names none (as run --model).",
            parser=model_name_text,
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="A key of yours for this run: submitting it again is refused, naming the run "
            "it made.",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            help=f"Fail the run if it has not ended by then: a time from now ({UNITS_HELP}) "
            "or an ISO timestamp with a zone.",
        ),
    ] = None,
    max_attempts: Annotated[
        int,
        typer.Option(
            "--max-attempts",
            help="Attempts before it fails (a provider error, a lost worker: retried with "
            "backoff).",
            min=1,
            max=INTEGER_MAX,
        ),
    ] = 3,
    webhook: Annotated[
        str | None,
        typer.Option(help="POST the run's end to this URL (signed, see fast-agent-db webhooks)."),
    ] = None,
    webhook_secret_env: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret-env",
            help="The environment variable holding the webhook's signing secret (read by the "
            "worker; never stored). Default: FAST_AGENT_DB_WEBHOOK_SECRET.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run to end and print its reply.")
    ] = False,
    timeout: TimeoutOption = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Queue a run of AGENT on a message; a worker (fast-agent-db worker) runs it.

    Refused, with nothing queued, when the agent is not defined in the database, the
    deadline is not in the future, or the idempotency key was used before.

    With --wait: exit code 0 when the run completed (its reply on stdout), 1 when it failed
    or was cancelled, 3 when --timeout passed first.
    """
    chosen = chosen_format(json_flag, output_format)
    secret_ref = None
    if webhook_secret_env is not None:
        secret_ref = (
            webhook_secret_env
            if webhook_secret_env.startswith(ENV_PREFIX)
            else f"{ENV_PREFIX}{webhook_secret_env}"
        )
    submission = RunSubmission(
        agent_name=agent,
        message=message,
        session_id=session,
        model=model,
        caller=CLI_CALLER,
        idempotency_key=idempotency_key,
        deadline=parse_deadline(deadline),
        max_attempts=max_attempts,
        webhook_url=webhook,
        webhook_secret_ref=secret_ref,
    )

    async def work() -> tuple[Run, Run | None]:
        async with await _open(database_url) as runtime:
            store = SqlRunStore(runtime)
            run = await store.submit(submission)
            if not wait:
                return run, None
            if chosen is OutputFormat.TABLE:
                error_console.print(
                    f"Queued run {run.run_id} (session {run.session_id}); waiting for it to end...",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            return run, await _wait(store, run.run_id, timeout)

    run, ended = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document(ended or run, chosen)
        if ended is not None and ended.status != "completed":
            raise typer.Exit(1)
        return
    if ended is not None:
        _print_ended(ended)
        return
    console.print(
        f"Queued run {run.run_id} of {run.agent_name} in session {run.session_id}. "
        f"Follow it with: fast-agent-db runs wait {run.run_id}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option(help=f"Only runs in this status: {', '.join(RUN_STATUSES)}."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent's runs.", parser=agent_name_text)
    ] = None,
    session: Annotated[str | None, session_option("Only this session's runs.")] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=INTEGER_MAX)
    ] = 50,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List runs, newest first."""
    chosen = chosen_format(json_flag, output_format)
    if status is not None and status not in RUN_STATUSES:
        raise InputError("--status", f"{status!r} is not one of {', '.join(RUN_STATUSES)}")
    wanted: RunStatus | None = status  # type: ignore[assignment]

    async def work() -> list[Run]:
        async with await _open(database_url) as runtime:
            return await SqlRunStore(runtime).list(
                status=wanted, agent_name=agent, session_id=session, limit=limit
            )

    print_rows(
        run_async(work()),
        [
            Column("run", lambda run: run.run_id, typed=True),
            Column("agent", lambda run: run.agent_name, typed=True),
            Column("status", lambda run: run.status),
            Column("attempts", lambda run: f"{run.attempts}/{run.max_attempts}", justify="right"),
            Column("created (UTC)", lambda run: _when(run.created_at)),
            Column("finished (UTC)", lambda run: _when(run.finished_at)),
            Column("session", lambda run: run.session_id or "", typed=True),
            Column("result or error", lambda run: _short(run.result or run.error)),
        ],
        title="runs",
        output_format=chosen,
        wide=wide,
    )


@app.command()
def show(
    run_id: RunIdArgument,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one run: its status, attempts, lease, times, reply or error."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> Run:
        async with await _open(database_url) as runtime:
            return await SqlRunStore(runtime).get(run_id)

    run = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document(run, chosen)
        return
    lines = [
        ("run", run.run_id),
        ("agent", run.agent_name),
        ("session", run.session_id or "(deleted)"),
        ("status", run.status),
        ("attempts", f"{run.attempts} of {run.max_attempts}"),
        ("model", run.model or ""),
        ("caller", run.caller),
        ("idempotency key", run.idempotency_key or ""),
        ("created (UTC)", _when(run.created_at)),
        ("not before (UTC)", _when(run.not_before) if run.status == "queued" else ""),
        ("deadline (UTC)", _when(run.deadline)),
        ("started (UTC)", _when(run.started_at)),
        ("finished (UTC)", _when(run.finished_at)),
        ("worker", run.lease_owner or ""),
        ("lease epoch", str(run.lease_epoch)),
        ("lease until (UTC)", _when(run.lease_expires_at)),
        ("cancel asked (UTC)", _when(run.cancel_requested_at)),
        ("message", run.message),
        ("result", run.result or ""),
        ("error", run.error or ""),
    ]
    for name, value in lines:
        if value:
            console.print(f"{name}: {value}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def cancel(
    run_id: RunIdArgument,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Cancel a run (a queued one never starts, a running one stops).

    A running run stops at its next call boundary (an agent call, a provider request, a tool
    call). A run that has ended is refused.
    """
    chosen = chosen_format(json_flag, output_format)

    async def work() -> Run:
        async with await _open(database_url) as runtime:
            return await SqlRunStore(runtime).cancel(run_id)

    run = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document(run, chosen)
        return
    said = (
        f"Cancelled run {run.run_id}; it never started."
        if run.status == "cancelled"
        else f"Asked run {run.run_id} to stop: it stops at its next call boundary "
        f"(fast-agent-db runs wait {run.run_id})."
    )
    console.print(said, markup=False, highlight=False, soft_wrap=True)


@app.command("wait")
def wait_(
    run_id: RunIdArgument,
    timeout: TimeoutOption = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Wait for a run to end (at once if it has) and print its reply.

    Exit code: 0 when the run completed (its reply on stdout), 1 when it failed or was
    cancelled, 3 when --timeout passed first.
    """
    chosen = chosen_format(json_flag, output_format)

    async def work() -> Run:
        async with await _open(database_url) as runtime:
            return await _wait(SqlRunStore(runtime), run_id, timeout)

    run = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document(run, chosen)
        if run.status != "completed":
            raise typer.Exit(1)
        return
    _print_ended(run)

"""`fast-agent-db webhooks ...`: where to POST when a run ends, and what was delivered."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    OutputFormat,
    WideOption,
    chosen_format,
    print_document,
    print_rows,
)
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import console, error_console, run_async
from mcp_agent.db.lookups import complete_id
from mcp_agent.db.models.runs import RunRow, WebhookRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.secrets import ENV_PREFIX
from mcp_agent.db.urls import resolve_database_url
from mcp_agent.db.webhooks.base import Webhook, WebhookDelivery
from mcp_agent.db.webhooks.sql import SqlWebhookStore
from mcp_agent.db.webhooks.validation import (
    DEFAULT_SECRET_ENV,
    WEBHOOK_EVENTS,
    checked_agent_name,
    checked_events,
    checked_secret_ref,
    checked_url,
)

app = typer.Typer(
    help=(
        "Webhooks: a signed POST when a run ends (subscriptions, and webhooks given at "
        "submit), and their deliveries with every attempt."
    ),
    no_args_is_help=True,
)


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def _scope(webhook: Webhook) -> str:
    if webhook.run_id is not None:
        return f"run {webhook.run_id}"
    return "every agent" if webhook.agent_name is None else f"agent {webhook.agent_name}"


@app.command("list")
def list_(
    include_runs: Annotated[
        bool, typer.Option("--all", help="Webhooks given with a run at submit too.")
    ] = False,
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run's webhooks (id or unique prefix).")
    ] = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List webhooks, oldest first: subscriptions (every run's end, or one agent's)."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> list[Webhook]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            run_id = None
            if run is not None:
                run_id = await complete_id(runtime, RunRow.run_id, run, what="run")
            return await SqlWebhookStore(runtime).list(run_id=run_id, include_runs=include_runs)

    webhooks = run_async(work())
    print_rows(
        webhooks,
        [
            Column("id", lambda webhook: webhook.webhook_id, typed=True),
            Column("url", lambda webhook: webhook.url),
            Column("events", lambda webhook: ", ".join(webhook.events)),
            Column("for", _scope),
            Column("secret", lambda webhook: webhook.secret_ref),
            Column("created (UTC)", lambda webhook: _when(webhook.created_at)),
        ],
        title="Webhooks",
        output_format=chosen,
        wide=wide,
    )


@app.command()
def add(
    url: Annotated[str, typer.Argument(help="Where to POST: an http:// or https:// URL.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            help=(
                f"Which ends to POST ({', '.join(WEBHOOK_EVENTS)}; 'completed' is short for "
                "run.completed); repeat or separate with commas. Default: all."
            ),
        ),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent's runs (default: every agent's).")
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env",
            help=(
                "The environment variable holding the signing secret, read by whoever delivers "
                f"(a worker, webhooks deliver); the secret is never stored. "
                f"Default: {DEFAULT_SECRET_ENV}."
            ),
        ),
    ] = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Subscribe a URL to runs' ends: each end is POSTed as JSON, signed with HMAC-SHA256."""
    chosen = chosen_format(json_flag, output_format)
    names = None if events is None else [n for given in events for n in given.split(",") if n]
    if secret_env is not None and not secret_env.startswith((ENV_PREFIX, "${")):
        secret_env = f"{ENV_PREFIX}{secret_env}"

    # Checked here first, so a message names the option rather than the store's field.
    checked_url(url, field="URL")
    checked_events(names, field="--events")
    checked_agent_name(agent, field="--agent")
    checked_secret_ref(secret_env, field="--secret-env")

    async def work() -> Webhook:
        async with await DatabaseRuntime.open(resolve_database_url(database_url)) as runtime:
            return await SqlWebhookStore(runtime).add(
                url, events=names, agent_name=agent, secret_ref=secret_env
            )

    webhook = run_async(work())
    if chosen is not OutputFormat.TABLE:
        print_document(webhook, chosen)
        return
    console.print(
        f"Added webhook {webhook.webhook_id}: {webhook.url} ({', '.join(webhook.events)}) "
        f"for {_scope(webhook)}'s runs, signed with the secret in {webhook.secret_ref}.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    variable = webhook.secret_ref.removeprefix(ENV_PREFIX)
    if variable not in os.environ:
        error_console.print(
            f"Note: {variable} is not set here; set it where deliveries are made (workers, "
            "webhooks deliver), or they are held and retried unsent.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def remove(
    webhook: Annotated[str, typer.Argument(help="The webhook's id, or a unique prefix of it.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove a webhook: no new deliveries; those already made are still delivered."""

    async def work() -> Webhook:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            webhook_id = await complete_id(runtime, WebhookRow.webhook_id, webhook, what="webhook")
            return await SqlWebhookStore(runtime).remove(webhook_id)

    removed = run_async(work())
    console.print(f"Removed webhook {removed.webhook_id} ({removed.url}).", markup=False)


def _outcome(delivery: WebhookDelivery) -> str:
    if delivery.status == "delivered":
        return f"{delivery.last_status_code} at {_when(delivery.delivered_at)}"
    if delivery.status == "pending" and delivery.attempts:
        return f"{delivery.last_error}; next at {_when(delivery.next_attempt_at)}"
    return delivery.last_error or ""


@app.command()
def deliveries(
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run's (id or unique prefix).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="Only this webhook's (id or unique prefix).")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List deliveries, newest first; JSON and YAML include every attempt and the payload."""
    chosen = chosen_format(json_flag, output_format)

    async def work() -> list[WebhookDelivery]:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            run_id = webhook_id = None
            if run is not None:
                run_id = await complete_id(runtime, RunRow.run_id, run, what="run")
            if webhook is not None:
                webhook_id = await complete_id(
                    runtime, WebhookRow.webhook_id, webhook, what="webhook"
                )
            return await SqlWebhookStore(runtime).deliveries(
                run_id=run_id,
                webhook_id=webhook_id,
                status=status,  # type: ignore[arg-type] - the store checks it
                limit=limit,
            )

    found = run_async(work())
    print_rows(
        found,
        [
            Column("delivery", lambda delivery: delivery.delivery_id, typed=True),
            Column("run", lambda delivery: delivery.run_id, typed=True),
            Column("event", lambda delivery: delivery.event),
            Column("url", lambda delivery: delivery.url),
            Column("status", lambda delivery: delivery.status),
            Column("attempts", lambda delivery: str(delivery.attempts), justify="right"),
            Column("last outcome", _outcome),
        ],
        title="Webhook deliveries",
        output_format=chosen,
        wide=wide,
    )


@app.command()
def deliver(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Deliver webhooks without a worker: POST what is due, retry failures with backoff.

    Runs until SIGTERM or Ctrl-C (workers deliver too). The signing secrets' variables must
    be set in its environment.
    """
    from mcp_agent.db.webhooks.delivery import WebhookDeliverer
    from mcp_agent.db.workers import this_worker

    async def work() -> int:
        async with await DatabaseRuntime.open_existing(
            resolve_database_url(database_url)
        ) as runtime:
            deliverer = WebhookDeliverer(runtime, this_worker())
            if once:
                total = 0
                # Pass after pass while batches come back full, each taking only what was due
                # when the command started: the retries it schedules are left for later.
                started = await deliverer.now()  # the server's clock on PostgreSQL
                while (attempted := await deliverer.deliver_due(due_by=started)) > 0:
                    total += attempted
                    if attempted < deliverer.batch_size:
                        break
                return total
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            error_console.print("Delivering webhooks; Ctrl-C or SIGTERM stops.", markup=False)
            await deliverer.run(stop)
            return 0

    attempted = run_async(work())
    if once:
        console.print(
            f"Attempted {attempted} deliveries (see: fast-agent-db webhooks deliveries).",
            markup=False,
        )

"""`fast-agent-db models ...`: models and their prices per million tokens."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from mcp_agent.db.cli.config import current_user
from mcp_agent.db.cli.formats import (
    Column,
    FormatOption,
    JsonOption,
    WideOption,
    chosen_format,
    print_rows,
)
from mcp_agent.db.cli.options import DatabaseUrlOption
from mcp_agent.db.cli.output import EXIT_BAD_INPUT, console, fail, run_async
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.model_catalog import ModelPrice, SqlModelCatalog
from mcp_agent.db.urls import resolve_database_url

app = typer.Typer(help="Models and prices: list, set-price.", no_args_is_help=True)


def _decimal(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        fail(f"{option} {text!r}: not a number", code=EXIT_BAD_INPUT)


def _show(text: Decimal | None) -> str:
    return "" if text is None else f"{text.normalize():f}"


async def _list(raw_url: str, provider: str | None) -> list[ModelPrice]:
    async with await DatabaseRuntime.open(raw_url) as runtime:
        return await SqlModelCatalog(runtime).list_models(provider)


@app.command("list")
def list_(
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    json_flag: JsonOption = False,
    output_format: FormatOption = None,
    wide: WideOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List models with context windows and prices per million tokens."""
    chosen = chosen_format(json_flag, output_format)
    models = run_async(_list(resolve_database_url(database_url), provider))
    print_rows(
        models,
        [
            Column("provider", lambda model: model.provider, typed=True),
            # What `models set-price PROVIDER/MODEL` takes: never cut.
            Column("model", lambda model: model.model, typed=True),
            Column(
                "context",
                lambda model: "" if model.context_window is None else f"{model.context_window:,}",
                justify="right",
            ),
            Column("input", lambda model: _show(model.input_price_per_mtok), justify="right"),
            Column("output", lambda model: _show(model.output_price_per_mtok), justify="right"),
            Column(
                "cache read", lambda model: _show(model.cache_read_price_per_mtok), justify="right"
            ),
            Column(
                "cache write",
                lambda model: _show(model.cache_write_price_per_mtok),
                justify="right",
            ),
        ],
        title="models (prices per million tokens)",
        output_format=chosen,
        wide=wide,
    )


@app.command("set-price")
def set_price(
    model: Annotated[str, typer.Argument(help="PROVIDER/MODEL, e.g. anthropic/claude-sonnet-4-0.")],
    input_price: Annotated[
        str | None,
        typer.Option("--input-price", "--input", help="USD per 1M input tokens."),
    ] = None,
    output_price: Annotated[
        str | None,
        typer.Option(
            "--output-price",
            "--output",
            help="USD per 1M output tokens (--output is the old name, still accepted).",
        ),
    ] = None,
    cache_read: Annotated[
        str | None, typer.Option("--cache-read", help="USD per 1M cached input tokens read.")
    ] = None,
    cache_write: Annotated[
        str | None, typer.Option("--cache-write", help="USD per 1M tokens written to cache.")
    ] = None,
    context_window: Annotated[int | None, typer.Option(help="Context window in tokens.")] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create a model or change its prices; options not given stay as they are."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        fail(f"{model!r}: expected PROVIDER/MODEL", code=EXIT_BAD_INPUT)
    prices = {
        field: value
        for field, value in (
            ("input_price_per_mtok", _decimal(input_price, "--input-price")),
            ("output_price_per_mtok", _decimal(output_price, "--output-price")),
            ("cache_read_price_per_mtok", _decimal(cache_read, "--cache-read")),
            ("cache_write_price_per_mtok", _decimal(cache_write, "--cache-write")),
        )
        if value is not None
    }

    async def work() -> ModelPrice:
        async with await DatabaseRuntime.open(resolve_database_url(database_url)) as runtime:
            return await SqlModelCatalog(runtime).set_price(
                provider,
                name,
                prices=prices,
                context_window=context_window,
                changed_by=current_user(),
            )

    stored = run_async(work())
    console.print(
        f"{stored.provider}/{stored.model}: input {_show(stored.input_price_per_mtok)}, "
        f"output {_show(stored.output_price_per_mtok)}, "
        f"cache read {_show(stored.cache_read_price_per_mtok)}, "
        f"cache write {_show(stored.cache_write_price_per_mtok)} {stored.currency}/1M tokens"
    )

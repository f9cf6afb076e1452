"""Provider sections flag and the shipped model price table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
Schema version: 2 / fast-agent-db 0.1

Adds `fa_providers.configured` (a provider row may exist only to own models and prices) and
seeds prices per million tokens (USD, list prices as published by the providers in mid-2025)
for their common models. The rows are ordinary data: edit them with
`fast-agent-db models set-price`. The downgrade removes only seeded rows nobody changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# provider, model, context window, input, output, cache read, cache write (per million tokens)
SEEDED_MODELS: list[tuple[str, str, int, str, str, str | None, str | None]] = [
    ("anthropic", "claude-opus-4-0", 200_000, "15", "75", "1.50", "18.75"),
    ("anthropic", "claude-sonnet-4-0", 200_000, "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-7-sonnet-latest", 200_000, "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-5-sonnet-latest", 200_000, "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-5-haiku-latest", 200_000, "0.80", "4", "0.08", "1"),
    ("openai", "gpt-4.1", 1_047_576, "2", "8", "0.50", None),
    ("openai", "gpt-4.1-mini", 1_047_576, "0.40", "1.60", "0.10", None),
    ("openai", "gpt-4.1-nano", 1_047_576, "0.10", "0.40", "0.025", None),
    ("openai", "gpt-4o", 128_000, "2.50", "10", "1.25", None),
    ("openai", "gpt-4o-mini", 128_000, "0.15", "0.60", "0.075", None),
    ("openai", "o3", 200_000, "2", "8", "0.50", None),
    ("openai", "o3-mini", 200_000, "1.10", "4.40", "0.55", None),
    ("openai", "o4-mini", 200_000, "1.10", "4.40", "0.275", None),
    ("google", "gemini-2.5-pro", 1_048_576, "1.25", "10", "0.31", None),
    ("google", "gemini-2.5-flash", 1_048_576, "0.30", "2.50", "0.075", None),
    ("google", "gemini-2.0-flash", 1_048_576, "0.10", "0.40", "0.025", None),
    ("deepseek", "deepseek-chat", 65_536, "0.27", "1.10", "0.07", None),
    ("deepseek", "deepseek-reasoner", 65_536, "0.55", "2.19", "0.14", None),
]

_providers = sa.table(
    "fa_providers",
    sa.column("provider_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("options", sa.JSON),
    sa.column("configured", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_models = sa.table(
    "fa_models",
    sa.column("provider_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("context_window", sa.Integer),
    sa.column("input_price_per_mtok", sa.Numeric),
    sa.column("output_price_per_mtok", sa.Numeric),
    sa.column("cache_read_price_per_mtok", sa.Numeric),
    sa.column("cache_write_price_per_mtok", sa.Numeric),
    sa.column("currency", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def upgrade() -> None:
    with op.batch_alter_table("fa_providers") as batch_op:
        batch_op.add_column(
            sa.Column("configured", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Every provider row that existed before this revision came from the settings.
    op.execute(_providers.update().values(configured=True))

    connection = op.get_bind()
    now = datetime.now(UTC)
    provider_ids: dict[str, int] = dict(
        connection.execute(sa.select(_providers.c.name, _providers.c.provider_id)).all()
    )
    for provider in sorted({row[0] for row in SEEDED_MODELS} - set(provider_ids)):
        connection.execute(
            _providers.insert().values(
                name=provider, options={}, configured=False, created_at=now, updated_at=now
            )
        )
    provider_ids = dict(
        connection.execute(sa.select(_providers.c.name, _providers.c.provider_id)).all()
    )
    existing = set(connection.execute(sa.select(_models.c.provider_id, _models.c.name)).all())
    rows = [
        {
            "provider_id": provider_ids[provider],
            "name": model,
            "context_window": window,
            "input_price_per_mtok": _decimal(price_in),
            "output_price_per_mtok": _decimal(price_out),
            "cache_read_price_per_mtok": _decimal(cache_read),
            "cache_write_price_per_mtok": _decimal(cache_write),
            "currency": "USD",
            "created_at": now,
            "updated_at": now,
        }
        for provider, model, window, price_in, price_out, cache_read, cache_write in SEEDED_MODELS
        if (provider_ids[provider], model) not in existing
    ]
    if rows:
        op.bulk_insert(_models, rows)


def _seeded_and_unchanged() -> sa.ColumnElement[bool]:
    """Model rows still as this revision seeded them (provider, name, prices)."""
    # An alias, so that inside a query over fa_providers it is not correlated with that row.
    named = _providers.alias("seeded_provider")
    return sa.or_(
        *(
            sa.and_(
                _models.c.provider_id
                == sa.select(named.c.provider_id).where(named.c.name == provider).scalar_subquery(),
                _models.c.name == model,
                _models.c.input_price_per_mtok == Decimal(price_in),
                _models.c.output_price_per_mtok == Decimal(price_out),
            )
            for provider, model, _window, price_in, price_out, *_rest in SEEDED_MODELS
        )
    )


def _keeps_a_model() -> sa.ColumnElement[bool]:
    """The provider owns a model the downgrade keeps (NULL prices never match a seeded row)."""
    return sa.exists().where(
        _models.c.provider_id == _providers.c.provider_id,
        sa.not_(sa.func.coalesce(_seeded_and_unchanged(), sa.false())),
    )


def downgrade_losses(connection: sa.Connection) -> list[tuple[str, int, str]]:
    """What `downgrade()` deletes, as (what, count, unit); read before asking to go ahead."""
    unconfigured = _providers.c.configured == sa.false()
    count = sa.select(sa.func.count())
    return [
        (
            "fa_models (seeded prices nobody changed)",
            connection.scalar(count.select_from(_models).where(_seeded_and_unchanged())) or 0,
            "row",
        ),
        (
            "fa_providers (providers that own only those prices)",
            connection.scalar(count.select_from(_providers).where(unconfigured, ~_keeps_a_model()))
            or 0,
            "row",
        ),
        (
            "fa_providers.configured (providers kept but marked as not in the settings)",
            connection.scalar(count.select_from(_providers).where(unconfigured, _keeps_a_model()))
            or 0,
            "value",
        ),
    ]


def downgrade() -> None:
    connection = op.get_bind()
    # Only seeded rows nobody changed: an edited price is the user's data.
    connection.execute(_models.delete().where(_seeded_and_unchanged()))
    # Provider rows that only owned seeded models and are not settings sections.
    connection.execute(
        _providers.delete().where(
            _providers.c.configured == sa.false(),
            ~sa.exists().where(_models.c.provider_id == _providers.c.provider_id),
        )
    )
    with op.batch_alter_table("fa_providers") as batch_op:
        batch_op.drop_column("configured")

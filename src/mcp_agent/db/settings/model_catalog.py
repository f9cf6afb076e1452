"""Models and their prices (`fa_models`): the data cost accounting reads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from mcp_agent.db.models import ConfigChangeRow, ModelRow, ProviderRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.document import PROVIDER_SECTIONS, ConfigError
from mcp_agent.db.settings.sql import lock_configuration

PRICE_FIELDS = (
    "input_price_per_mtok",
    "output_price_per_mtok",
    "cache_read_price_per_mtok",
    "cache_write_price_per_mtok",
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    provider: str
    model: str
    context_window: int | None
    input_price_per_mtok: Decimal | None
    output_price_per_mtok: Decimal | None
    cache_read_price_per_mtok: Decimal | None
    cache_write_price_per_mtok: Decimal | None
    currency: str


def _price(provider: str, row: ModelRow) -> ModelPrice:
    return ModelPrice(
        provider=provider,
        model=row.name,
        context_window=row.context_window,
        input_price_per_mtok=row.input_price_per_mtok,
        output_price_per_mtok=row.output_price_per_mtok,
        cache_read_price_per_mtok=row.cache_read_price_per_mtok,
        cache_write_price_per_mtok=row.cache_write_price_per_mtok,
        currency=row.currency,
    )


class SqlModelCatalog:
    def __init__(self, runtime: DatabaseRuntime) -> None:
        self._runtime = runtime

    async def list_models(self, provider: str | None = None) -> list[ModelPrice]:
        query = (
            select(ProviderRow.name, ModelRow)
            .join(ModelRow, ModelRow.provider_id == ProviderRow.provider_id)
            .order_by(ProviderRow.name, ModelRow.name)
        )
        if provider is not None:
            query = query.where(ProviderRow.name == provider)
        async with self._runtime.sessions() as session:
            return [_price(name, row) for name, row in (await session.execute(query)).all()]

    async def set_price(
        self,
        provider: str,
        model: str,
        *,
        prices: dict[str, Decimal | None],
        context_window: int | None = None,
        changed_by: str | None = None,
    ) -> ModelPrice:
        """Create or update a model's prices (per million tokens); unspecified fields stay.

        Raises:
            ConfigError: an unknown provider, an unknown price field or a negative price.
        """
        if provider not in PROVIDER_SECTIONS:
            known = ", ".join(sorted(PROVIDER_SECTIONS))
            raise ConfigError([f"models: unknown provider {provider!r} (known: {known})"])
        for field, value in prices.items():
            if field not in PRICE_FIELDS:
                raise ConfigError([f"models.{provider}/{model}: unknown price field {field!r}"])
            if value is not None and value < 0:
                raise ConfigError([f"models.{provider}/{model}.{field}: must not be negative"])
        if context_window is not None and context_window <= 0:
            raise ConfigError([f"models.{provider}/{model}.context_window: must be positive"])

        async with self._runtime.sessions.begin() as session:
            await lock_configuration(session)
            provider_row = (
                await session.scalars(select(ProviderRow).where(ProviderRow.name == provider))
            ).one_or_none()
            if provider_row is None:
                provider_row = ProviderRow(name=provider, options={}, configured=False)
                session.add(provider_row)
                await session.flush()
            row = (
                await session.scalars(
                    select(ModelRow).where(
                        ModelRow.provider_id == provider_row.provider_id, ModelRow.name == model
                    )
                )
            ).one_or_none()
            entity = f"{provider}/{model}"
            if row is None:
                row = ModelRow(provider_id=provider_row.provider_id, name=model, currency="USD")
                session.add(row)
                session.add(
                    ConfigChangeRow(
                        entity_type="model",
                        entity_name=entity,
                        operation="insert",
                        new_value={k: str(v) for k, v in prices.items() if v is not None},
                        changed_by=changed_by,
                    )
                )
            else:
                for field, value in prices.items():
                    old = getattr(row, field)
                    if old != value:
                        session.add(
                            ConfigChangeRow(
                                entity_type="model",
                                entity_name=entity,
                                field=field,
                                operation="update",
                                old_value=None if old is None else str(old),
                                new_value=None if value is None else str(value),
                                changed_by=changed_by,
                            )
                        )
            for field, value in prices.items():
                setattr(row, field, value)
            if context_window is not None:
                row.context_window = context_window
            await session.flush()
            return _price(provider, row)

"""/v1/models: models with context windows and prices per million tokens, as `fast-agent-db
models list|set-price`, through the same model catalog (so a price change is recorded in the
configuration history). Prices are decimal strings, exact."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import ModelCatalog
from mcp_agent.db.api.pagination import Page, PageParameters, paginate
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.limits import INTEGER_MAX, check_text, max_length
from mcp_agent.db.models import ModelRow
from mcp_agent.db.settings.document import PROVIDER_SECTIONS
from mcp_agent.db.settings.model_catalog import PRICE_FIELDS, ModelPrice

router = APIRouter(prefix="/models", tags=["models"])

MODEL_NAME_MAX_LENGTH = max_length(ModelRow.name) or 0
#: What fa_models' NUMERIC(14, 6) price columns hold.
_PRICE_DIGITS = {"max_digits": 14, "decimal_places": 6}

ProviderName = Annotated[str, Path(max_length=64, description="The provider, e.g. anthropic.")]
ModelName = Annotated[
    str,
    Path(
        max_length=MODEL_NAME_MAX_LENGTH,
        description="The model, e.g. claude-sonnet-4-0 (may contain '/').",
    ),
]
Price = Annotated[Decimal | None, Field(ge=0, **_PRICE_DIGITS)]


class Model(BaseModel):
    provider: str
    model: str
    context_window: int | None = None
    input_price_per_mtok: Decimal | None = None
    output_price_per_mtok: Decimal | None = None
    cache_read_price_per_mtok: Decimal | None = None
    cache_write_price_per_mtok: Decimal | None = None
    currency: str


class ModelPriceUpdate(BaseModel):
    """Prices (USD per million tokens) and context window: fields left out stay as they
    are; a price given as null is cleared."""

    model_config = ConfigDict(extra="forbid")

    input_price_per_mtok: Price = None
    output_price_per_mtok: Price = None
    cache_read_price_per_mtok: Price = None
    cache_write_price_per_mtok: Price = None
    context_window: Annotated[int | None, Field(gt=0, le=INTEGER_MAX)] = None


def _model(price: ModelPrice) -> Model:
    return Model(
        provider=price.provider,
        model=price.model,
        context_window=price.context_window,
        # Exact, without the column's padding zeros (2.000000 is 2).
        **{field: _normalised(getattr(price, field)) for field in PRICE_FIELDS},
        currency=price.currency,
    )


def _normalised(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(f"{value.normalize():f}")


async def _find(catalog: ModelCatalog, provider: str, model: str) -> Model:
    for price in await catalog.list_models(provider):
        if price.model == model:
            return _model(price)
    raise UnknownValueError(f"no model {provider}/{model} (see GET /v1/models)")


@router.get("", summary="Models and prices", response_model=Page[Model])
async def list_models(
    catalog: ModelCatalog,
    page: PageParameters,
    provider: Annotated[str | None, Query(max_length=64, description="Only this provider.")] = None,
) -> Page[Model]:
    models = [_model(price) for price in await catalog.list_models(provider)]
    return paginate(models, page, list_name="models", key=lambda m: (m.provider, m.model))


@router.get(
    "/{provider}/{model:path}",
    summary="One model",
    response_model=Model,
    responses=problem_responses(404),
)
async def get_model(catalog: ModelCatalog, provider: ProviderName, model: ModelName) -> Model:
    return await _find(catalog, provider, model)


@router.put(
    "/{provider}/{model:path}",
    summary="Create a model or change its prices (as `models set-price`)",
    response_model=Model,
    # 404: a model name no route matches (the path converter stops at a line break).
    responses={201: {"model": Model, "description": "Created"}, **problem_responses(404)},
)
async def set_model_price(
    catalog: ModelCatalog,
    caller: Caller,
    provider: ProviderName,
    model: ModelName,
    update: ModelPriceUpdate,
    response: Response,
) -> Model:
    if provider not in PROVIDER_SECTIONS:
        known = ", ".join(sorted(PROVIDER_SECTIONS))
        raise InputError("provider", f"unknown provider {provider!r} (known: {known})")
    check_text(model, field="model", max_length=MODEL_NAME_MAX_LENGTH)
    given = update.model_dump(exclude_unset=True)
    existed = any(price.model == model for price in await catalog.list_models(provider))
    stored = await catalog.set_price(
        provider,
        model,
        prices={field: given[field] for field in PRICE_FIELDS if field in given},
        context_window=given.get("context_window"),
        changed_by=caller.audit_name,
    )
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return _model(stored)

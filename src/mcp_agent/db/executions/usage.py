"""Token usage and cost of executions, from upstream's usage turns (one per API call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mcp_agent.db.settings.model_catalog import ModelPrice

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class UsageTurn:
    """One provider API call's usage (upstream `TurnUsage`), with its cost when priced."""

    provider: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    tool_use_tokens: int
    cost: Decimal | None
    raw_usage: dict[str, Any] | None


@dataclass(slots=True)
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal | None = None
    models: set[str] = field(default_factory=set)

    def add_turn(self, turn: UsageTurn) -> None:
        self.input_tokens += turn.input_tokens
        self.output_tokens += turn.output_tokens
        self.cache_read_tokens += turn.cache_read_tokens
        self.cache_write_tokens += turn.cache_write_tokens
        self.reasoning_tokens += turn.reasoning_tokens
        self._add_cost(turn.cost)
        if turn.model:
            self.models.add(turn.model)

    def add(self, other: UsageTotals) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self._add_cost(other.cost)
        self.models |= other.models

    def _add_cost(self, cost: Decimal | None) -> None:
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost


class PriceBook:
    """Prices by model name, looked up for each usage turn."""

    def __init__(self, prices: list[ModelPrice]) -> None:
        self._by_model: dict[str, ModelPrice] = {}
        for price in prices:
            self._by_model.setdefault(price.model, price)

    def cost(self, model: str | None, turn: Any) -> Decimal | None:
        """Cost of one upstream TurnUsage; None when the model has no price."""
        price = self._by_model.get(model or "")
        if (
            price is None
            or price.input_price_per_mtok is None
            or price.output_price_per_mtok is None
        ):
            return None
        cache = turn.cache_usage
        # OpenAI counts cached tokens inside input_tokens (cache_hit); Anthropic reports cache
        # reads separately (cache_read). Each cached token is billed once, at the cache price.
        uncached_input = max(turn.input_tokens - cache.cache_hit_tokens, 0)
        cached = cache.cache_read_tokens + cache.cache_hit_tokens
        cache_read_price = price.cache_read_price_per_mtok or price.input_price_per_mtok
        cache_write_price = price.cache_write_price_per_mtok or price.input_price_per_mtok
        total = (
            uncached_input * price.input_price_per_mtok
            + cached * cache_read_price
            + cache.cache_write_tokens * cache_write_price
            + turn.output_tokens * price.output_price_per_mtok
        )
        return total / _MILLION


def usage_turn(turn: Any, prices: PriceBook) -> UsageTurn:
    """Our record of one upstream `TurnUsage`."""
    cache = turn.cache_usage
    provider = getattr(turn.provider, "value", str(turn.provider))
    return UsageTurn(
        provider=provider,
        model=turn.model,
        input_tokens=turn.input_tokens,
        output_tokens=turn.output_tokens,
        cache_read_tokens=cache.cache_read_tokens + cache.cache_hit_tokens,
        cache_write_tokens=cache.cache_write_tokens,
        reasoning_tokens=turn.reasoning_tokens or 0,
        tool_use_tokens=turn.tool_use_tokens or 0,
        cost=prices.cost(turn.model, turn),
        raw_usage=_raw_usage(turn),
    )


def _raw_usage(turn: Any) -> dict[str, Any] | None:
    """The provider's own usage object as JSON, when it serialises (kept for audits)."""
    try:
        return turn.model_dump(mode="json", include={"raw_usage"}).get("raw_usage")
    except Exception:  # noqa: BLE001 - a provider type pydantic cannot dump is not fatal
        return None

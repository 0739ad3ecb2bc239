"""What a Claude call costs, from the published per-model prices.

Prices in USD per million tokens, as listed on Anthropic's pricing page
(https://platform.claude.com/docs/en/about-claude/pricing) when this table was written.
Prompt-cache reads cost 0.1x the input price and 5-minute cache writes 1.25x; the Message
Batches API halves every figure. A model missing here has no known price: its cost is
None and the budget cannot be enforced for it (review/services/ai_settings.py refuses a
budget on such a model).
"""

from __future__ import annotations

from dataclasses import dataclass

CACHE_READ_FACTOR = 0.1
CACHE_WRITE_FACTOR = 1.25
BATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float


PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-haiku-4-5-20251001": Price(1.0, 5.0),
    "claude-sonnet-4-6": Price(3.0, 15.0),
    "claude-opus-4-6": Price(5.0, 25.0),
}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def price_of(model: str) -> Price | None:
    return PRICES.get(model)


def cost_usd(model: str, usage: Usage, *, batch: bool = False) -> float | None:
    """The cost of one call in USD, or None when the model has no known price.

    `input_tokens` are the uncached input tokens (the API reports cache reads and writes
    separately), so the three input figures add up without double counting.
    """
    price = price_of(model)
    if price is None:
        return None
    per_token_in = price.input_per_mtok / 1_000_000
    cost = (
        usage.input_tokens * per_token_in
        + usage.cache_read_tokens * per_token_in * CACHE_READ_FACTOR
        + usage.cache_write_tokens * per_token_in * CACHE_WRITE_FACTOR
        + usage.output_tokens * price.output_per_mtok / 1_000_000
    )
    return cost * BATCH_FACTOR if batch else cost

"""What a Claude call costs, from the published per-model prices.

Prices in USD per million tokens, checked on 2026-11-26 against Anthropic's pricing page
(https://platform.claude.com/docs/en/about-claude/pricing, "Model pricing" and "Batch
processing") and each model's overview page (platform.claude.com/docs/en/models/<model>/
overview). Prompt-cache writes (5-minute TTL, the only one this app asks for) and cache
reads are listed per model because their ratio to the input price is not the same for
every model (Opus 5.5 reads the cache at 0.05x input, the older models at 0.1x). Claude
Haiku 5.5 bills every token of a request at 5x once its prompt (input, cache reads and
cache writes) exceeds 100,000 tokens. The Message Batches API halves every figure.

A model missing here has no known price: its cost is None and the budget cannot be
enforced for it (review/services/ai_settings.py refuses a budget on such a model). Claude
Sonnet 5.5 is left out on purpose: sources disagree on its cache-read price since
2026-10-07, and a guessed figure would be a wrong bill presented as a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Price:
    """One model's prices in USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    cache_write_per_mtok: float  # 5-minute cache writes
    cache_read_per_mtok: float  # cache hits and refreshes
    # Prompts longer than this many tokens pay `long_prompt_factor` times every price.
    long_prompt_tokens: int | None = None
    long_prompt_factor: float = 1.0


PRICES: dict[str, Price] = {
    # Current models (status "Latest" on their overview pages).
    "claude-haiku-5-5": Price(
        0.10, 0.50, 0.125, 0.01, long_prompt_tokens=100_000, long_prompt_factor=5.0
    ),
    "claude-opus-5-5": Price(4.0, 20.0, 5.0, 0.20),
    # Older models that are still served (legacy, not deprecated).
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
    "claude-haiku-4-5-20251001": Price(1.0, 5.0, 1.25, 0.10),
    "claude-sonnet-4-6": Price(3.0, 15.0, 3.75, 0.30),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, cached or not (what the long-prompt tier counts)."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


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
    cost = (
        usage.input_tokens * price.input_per_mtok
        + usage.cache_read_tokens * price.cache_read_per_mtok
        + usage.cache_write_tokens * price.cache_write_per_mtok
        + usage.output_tokens * price.output_per_mtok
    ) / 1_000_000
    if price.long_prompt_tokens is not None and usage.prompt_tokens > price.long_prompt_tokens:
        cost *= price.long_prompt_factor
    return cost * BATCH_FACTOR if batch else cost


def max_cost_usd(
    model: str, max_prompt_tokens: int, max_output_tokens: int, *, batch: bool = False
) -> float | None:
    """The most a call can cost with at most these many prompt and output tokens, or None
    when the model has no known price.

    A prompt token may be billed uncached, as a cache write or as a cache read (the API
    decides, not us), so each is priced at the dearest of the three. The long-prompt tier
    is applied when the bound crosses it: a bound below it leaves the real prompt below too.
    """
    if price_of(model) is None:
        return None
    ways = (
        Usage(input_tokens=max_prompt_tokens, output_tokens=max_output_tokens),
        Usage(cache_write_tokens=max_prompt_tokens, output_tokens=max_output_tokens),
        Usage(cache_read_tokens=max_prompt_tokens, output_tokens=max_output_tokens),
    )
    return max(cost_usd(model, usage, batch=batch) or 0.0 for usage in ways)

"""The price table: published figures, cache and batch rules, and a current default model."""

from __future__ import annotations

import pytest
from anthropic._data import DEPRECATED_MODELS

from review.domain.pricing import PRICES, Usage, cost_usd, max_cost_usd
from review.services.ai_settings import DEFAULT_CLAUDE_MODEL


def test_the_default_model_is_priced_and_not_deprecated():
    assert DEFAULT_CLAUDE_MODEL in PRICES
    assert DEFAULT_CLAUDE_MODEL not in DEPRECATED_MODELS


def test_no_priced_model_is_deprecated():
    assert not set(PRICES) & set(DEPRECATED_MODELS)


def test_a_call_costs_input_cache_and_output_at_the_models_own_rates():
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost_usd("claude-sonnet-4-6", usage) == pytest.approx(3 + 15)
    cached = Usage(cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    assert cost_usd("claude-haiku-4-5", cached) == pytest.approx(0.10 + 1.25)
    # Opus 5.5 reads its cache at 0.05x input, not the 0.1x of the older models.
    assert cost_usd("claude-opus-5-5", Usage(cache_read_tokens=1_000_000)) == pytest.approx(0.20)


def test_the_batch_api_halves_the_price():
    usage = Usage(input_tokens=2000, output_tokens=300, cache_read_tokens=500)
    full = cost_usd("claude-opus-4-6", usage)
    assert cost_usd("claude-opus-4-6", usage, batch=True) == pytest.approx(full / 2)


def test_haiku_5_5_bills_a_long_prompt_at_five_times_the_price():
    short = Usage(input_tokens=100_000, output_tokens=1000)
    long = Usage(input_tokens=90_000, cache_read_tokens=10_001, output_tokens=1000)
    assert cost_usd("claude-haiku-5-5", short) == pytest.approx(
        (100_000 * 0.10 + 1000 * 0.50) / 1e6
    )
    assert cost_usd("claude-haiku-5-5", long) == pytest.approx(
        5 * (90_000 * 0.10 + 10_001 * 0.01 + 1000 * 0.50) / 1e6
    )


def test_a_model_without_a_price_has_no_cost():
    assert cost_usd("claude-sonnet-7", Usage(input_tokens=10)) is None


def test_the_most_a_call_can_cost_prices_each_prompt_token_at_its_dearest_rate():
    # Haiku 4.5 writes its cache at 1.25/MTok, dearer than 1.00 uncached or 0.10 read.
    assert max_cost_usd("claude-haiku-4-5", 1_000_000, 1_000_000) == pytest.approx(1.25 + 5)
    assert max_cost_usd("claude-haiku-4-5", 1_000_000, 1_000_000, batch=True) == pytest.approx(
        (1.25 + 5) / 2
    )
    assert max_cost_usd("claude-sonnet-7", 10, 10) is None


def test_the_most_a_call_can_cost_includes_the_long_prompt_tier_once_the_bound_crosses_it():
    below = max_cost_usd("claude-haiku-5-5", 100_000, 1000)
    above = max_cost_usd("claude-haiku-5-5", 100_001, 1000)
    assert below == pytest.approx((100_000 * 0.125 + 1000 * 0.50) / 1e6)
    assert above == pytest.approx(5 * (100_001 * 0.125 + 1000 * 0.50) / 1e6)

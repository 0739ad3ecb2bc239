"""Queue counts are shared for COUNTS_CACHE_SECONDS between the pages polling them, and
are fresh again once that time has passed."""

from __future__ import annotations

import re

from review.web.queue.count_cache import TtlCache
from tests.conftest import login
from tests.web.ui_helpers import add_items, reviewer_in


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_it_expires_then_computed_again():
    clock = FakeClock()
    cache: TtlCache[int] = TtlCache(2.0, clock)
    computed = iter(range(100))
    assert cache.get("q", lambda: next(computed)) == 0
    clock.now += 1.9
    assert cache.get("q", lambda: next(computed)) == 0
    assert cache.get("other", lambda: next(computed)) == 1  # each key on its own
    clock.now += 0.2
    assert cache.get("q", lambda: next(computed)) == 2


def test_zero_seconds_turns_the_cache_off():
    cache: TtlCache[int] = TtlCache(0, FakeClock())
    computed = iter(range(100))
    assert [cache.get("q", lambda: next(computed)) for _ in range(3)] == [0, 1, 2]


def waiting(client) -> int:
    counts = client.get("/queues/support/counts")
    return int(re.search(r'data-count="needs_review">(\d+)<', counts.text).group(1))


def test_counts_polled_within_the_window_are_shared_then_refreshed(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    login(client, reviewer_in(factory, support).email)
    clock = FakeClock()
    app.extensions["queue_counts_cache"] = TtlCache(2.0, clock)
    assert waiting(client) == 3
    add_items(app, "support", 2, prefix="more")
    assert waiting(client) == 3  # another poll inside the window: the same figures
    clock.now += 2.5
    assert waiting(client) == 5

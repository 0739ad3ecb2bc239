"""What every recommender promises, and the errors it may raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from models import Item
from review.services.routing import RecommendationInput


class RecommenderUnavailable(Exception):
    """The queue's recommender cannot run at all (not configured, failed to load ...).

    Items are then routed to people with ai_status "unavailable" and this message as ai_error.
    """


class Recommender(Protocol):
    def recommend(self, items: Sequence[Item]) -> list[RecommendationInput | None]:
        """One entry per item, in order: advice, or None when there is nothing to say."""
        ...


class NoRecommendation:
    """A recommender with nothing to say, e.g. a local model that is not trained yet."""

    def recommend(self, items: Sequence[Item]) -> list[RecommendationInput | None]:
        return [None] * len(items)

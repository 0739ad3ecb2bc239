"""Recommenders: given items, say which label each should get and how sure we are."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import Queue
from workers.recommenders.base import (
    NoRecommendation,
    Recommender,
    RecommenderUnavailable,
)
from workers.recommenders.local import local_recommender_for

__all__ = ["NoRecommendation", "Recommender", "RecommenderUnavailable", "recommender_for"]

CLAUDE_NOT_CONFIGURED = "claude recommender not configured"


def recommender_for(session: Session, queue: Queue) -> Recommender:
    """The recommender the queue asks for.

    "none" gets a recommender with nothing to say; "claude" raises RecommenderUnavailable
    until that recommender is built, so its items still reach people.
    """
    if queue.recommender_kind == "local":
        return local_recommender_for(session, queue)
    if queue.recommender_kind == "claude":
        raise RecommenderUnavailable(CLAUDE_NOT_CONFIGURED)
    return NoRecommendation()

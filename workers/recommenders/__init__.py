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

CLAUDE_NOT_CONFIGURED = "claude items are recommended by workers.claude_jobs"


def recommender_for(session: Session, queue: Queue) -> Recommender:
    """The recommender the queue asks for.

    "none" gets a recommender with nothing to say. Claude queues do not come here: their
    items are dispatched to one call job each (workers/claude_jobs.py); should one arrive
    anyway, RecommenderUnavailable sends its items to people.
    """
    if queue.recommender_kind == "local":
        return local_recommender_for(session, queue)
    if queue.recommender_kind == "claude":
        raise RecommenderUnavailable(CLAUDE_NOT_CONFIGURED)
    return NoRecommendation()

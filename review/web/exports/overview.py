"""Counts for the ML page: human decisions and overrides per queue."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import Item, Queue, Review


@dataclass(frozen=True)
class DecisionCounts:
    queue: Queue
    decisions: int
    overrides: int


def decision_counts(session: Session, queues: list[Queue]) -> list[DecisionCounts]:
    """One row per queue, in the order given, counting every human review ever made."""
    overridden = case((Review.action == "overridden", 1), else_=0)
    totals = {
        queue_id: (decisions, int(overrides or 0))
        for queue_id, decisions, overrides in session.execute(
            select(Item.queue_id, func.count(Review.id), func.sum(overridden))
            .join(Review, Review.item_id == Item.id)
            .group_by(Item.queue_id)
        )
    }
    return [DecisionCounts(queue, *totals.get(queue.id, (0, 0))) for queue in queues]

"""Counts for the queue list: what awaits people, what awaits the AI, what was done today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, Queue, Review
from review.services import ai_budget
from review.services.ai_budget import BudgetStatus
from review.services.counting import Count, capped_count


@dataclass(frozen=True)
class QueueCounts:
    queue: Queue
    needs_review: Count
    pending: Count
    decided_today: int
    # Today's Claude spend against the queue's cap; None for queues that do not use Claude.
    ai_budget: BudgetStatus | None = None


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def queue_counts(session: Session, queues: list[Queue], now: datetime) -> list[QueueCounts]:
    """One row per queue, in the order given. "Today" is the calendar day of `now` (UTC).

    Waiting items are counted per queue up to a cap (a short index walk each, where one
    GROUP BY over every waiting item took a second at a million); a day's decisions are
    bounded by what people can do in a day, so they are counted exactly.
    """
    decided_today: dict[int, int] = {
        queue_id: count
        for queue_id, count in session.execute(
            select(Item.queue_id, func.count())
            .join(Review, Review.item_id == Item.id)
            .where(Review.decided_at >= start_of_day(now))
            .group_by(Item.queue_id)
        )
    }
    return [
        QueueCounts(
            queue=queue,
            needs_review=_waiting(session, queue, "needs_review"),
            pending=_waiting(session, queue, "pending"),
            decided_today=decided_today.get(queue.id, 0),
            ai_budget=ai_budget.status(session, queue, now)
            if queue.recommender_kind == "claude"
            else None,
        )
        for queue in queues
    ]


def _waiting(session: Session, queue: Queue, status: str) -> Count:
    return capped_count(
        session, select(Item.id).where(Item.queue_id == queue.id, Item.status == status)
    )

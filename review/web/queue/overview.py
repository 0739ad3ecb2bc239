"""Counts for the queue list: what awaits people, what awaits the AI, what was done today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, Queue, Review


@dataclass(frozen=True)
class QueueCounts:
    queue: Queue
    needs_review: int
    pending: int
    decided_today: int


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def queue_counts(session: Session, queues: list[Queue], now: datetime) -> list[QueueCounts]:
    """One row per queue, in the order given. "Today" is the calendar day of `now` (UTC)."""
    by_status: dict[tuple[int, str], int] = {
        (queue_id, status): count
        for queue_id, status, count in session.execute(
            select(Item.queue_id, Item.status, func.count())
            .where(Item.status.in_(("needs_review", "pending")))
            .group_by(Item.queue_id, Item.status)
        )
    }
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
            needs_review=by_status.get((queue.id, "needs_review"), 0),
            pending=by_status.get((queue.id, "pending"), 0),
            decided_today=decided_today.get(queue.id, 0),
        )
        for queue in queues
    ]

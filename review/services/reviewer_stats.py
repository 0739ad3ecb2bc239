"""A reviewer's own numbers: decisions today, median time per item, agreement with the AI."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Review, User


@dataclass(frozen=True)
class ReviewerStats:
    decisions_today: int
    median_seconds: float | None  # over today's decisions that were timed
    agreement: float | None  # share of today's decisions with an AI label that kept it
    compared: int  # how many decisions the agreement is over


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def reviewer_stats(session: Session, user: User, now: datetime) -> ReviewerStats:
    """Today's figures (the UTC calendar day of `now`) for this reviewer, across queues."""
    rows = session.execute(
        select(Review.seconds_on_item, Review.ai_label, Review.final_label).where(
            Review.reviewer_id == user.id, Review.decided_at >= start_of_day(now)
        )
    ).all()
    seconds = [row.seconds_on_item for row in rows if row.seconds_on_item is not None]
    with_ai = [row for row in rows if row.ai_label is not None]
    agreed = sum(1 for row in with_ai if row.ai_label == row.final_label)
    return ReviewerStats(
        decisions_today=len(rows),
        median_seconds=statistics.median(seconds) if seconds else None,
        agreement=agreed / len(with_ai) if with_ai else None,
        compared=len(with_ai),
    )

"""Feedback rows for the ML team: human decisions with the AI advice they confirmed or corrected."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Item, Queue, Recommendation, Review, User
from review.services.routing import latest_policy_version


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def iter_decision_rows(
    session: Session, queue: Queue, *, overrides_only: bool = False, batch_size: int = 1000
) -> Generator[dict[str, Any], None, None]:
    """Yield one dict per human decision in the queue, oldest decision first, streaming."""
    # The policy version that routed the item is the one on its latest routing record.
    policy_version = latest_policy_version()
    query = (
        select(
            Item.id,
            Item.external_id,
            Item.created_at,
            Recommendation.label,
            Recommendation.confidence,
            Recommendation.model,
            Recommendation.model_version,
            Recommendation.source,
            Review.action,
            Review.final_label,
            Review.reason_code,
            Review.comment,
            Review.seconds_on_item,
            Review.decided_at,
            User.email,
            policy_version,
        )
        .join(Review, Review.item_id == Item.id)
        .join(User, User.id == Review.reviewer_id)
        .outerjoin(Recommendation, Recommendation.item_id == Item.id)
        .where(Item.queue_id == queue.id)
        .order_by(Review.decided_at, Item.id)
        .execution_options(yield_per=batch_size)
    )
    if overrides_only:
        query = query.where(Review.action == "overridden")
    # Closing the result also closes PostgreSQL's server-side cursor when the consumer
    # stops early (a client that disconnects mid-download).
    with session.execute(query) as result:
        for row in result:
            yield {
                "item_id": row[0],
                "external_id": row[1],
                "queue": queue.slug,
                "ai_label": row[3],
                "confidence": row[4],
                "model": row[5],
                "model_version": row[6],
                "ai_source": row[7],
                "final_label": row[9],
                "overridden": row[8] == "overridden",
                "reason_code": row[10],
                "comment": row[11],
                "seconds_on_item": row[12],
                "reviewer": row[14],
                "policy_version": row[15],
                "created_at": _iso(row[2]),
                "decided_at": _iso(row[13]),
            }

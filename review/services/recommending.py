"""Applying a recommender's output to pending items: attach the advice, route each item.

The recommend job (workers/jobs.py) calls these with a batch of item ids. Every function
leaves the items it is given routed, never pending, and none of them commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import Item, Queue
from review.services.queues import current_policy
from review.services.routing import RecommendationInput, attach_recommendation, route_item


def lock_pending_items(session: Session, item_ids: Sequence[int]) -> list[Item]:
    """The items among these ids that are still pending, locked for this transaction.

    On PostgreSQL rows another job holds are skipped (SKIP LOCKED): that job routes them.
    Anything no longer pending is left out, which makes the recommend job idempotent.
    SQLite has no row locks (SQLAlchemy drops FOR UPDATE there); its single writer
    serialises jobs, and the unique recommendation per item backs that up.
    """
    if not item_ids:
        return []
    return list(
        session.scalars(
            select(Item)
            .where(Item.id.in_(list(item_ids)), Item.status == "pending")
            .order_by(Item.id)
            .options(selectinload(Item.recommendation))
            .with_for_update(skip_locked=True, of=Item)
        )
    )


def apply_recommendations(
    session: Session,
    queue: Queue,
    items: Sequence[Item],
    recommendations: Sequence[RecommendationInput | None],
) -> Counter[str]:
    """Attach each item's recommendation and route it; None routes it to people with
    ai_status "none". A label the queue does not have is refused: the item goes to people
    with ai_status "unavailable". Returns how many items went to each status."""
    if len(items) != len(recommendations):
        raise ValueError("need exactly one recommendation (or None) per item")
    outcome: Counter[str] = Counter()
    policy = current_policy(session, queue)  # one policy for the whole batch
    # One flush at the end instead of one per item: inserts go out in batches.
    with session.no_autoflush:
        for item, rec in zip(items, recommendations, strict=True):
            if rec is None:
                route_item(session, item, queue, None, ai_status="none", policy=policy)
            elif rec.label not in queue.labels:
                route_item(
                    session,
                    item,
                    queue,
                    None,
                    ai_status="unavailable",
                    ai_error=f"recommender answered unknown label {rec.label!r}",
                    policy=policy,
                )
            else:
                advice = attach_recommendation(session, item, rec)
                route_item(session, item, queue, advice, policy=policy)
            outcome[item.status] += 1
    session.flush()
    return outcome


def route_without_recommendation(
    session: Session,
    queue: Queue,
    items: Sequence[Item],
    ai_status: str,
    ai_error: str | None = None,
) -> Counter[str]:
    """Route items to people because no advice could be had, saying why in ai_status/ai_error."""
    outcome: Counter[str] = Counter()
    policy = current_policy(session, queue)
    with session.no_autoflush:
        for item in items:
            route_item(
                session, item, queue, None, ai_status=ai_status, ai_error=ai_error, policy=policy
            )
            outcome[item.status] += 1
    session.flush()
    return outcome


def lock_pending_item(session: Session, item_id: int) -> Item | None:
    """The item if it is still pending, locked until the transaction ends (waits for a
    job that holds it, unlike lock_pending_items: the caller already paid for an answer)."""
    return session.scalar(
        select(Item)
        .where(Item.id == item_id, Item.status == "pending")
        .options(selectinload(Item.recommendation))
        .with_for_update(of=Item)
    )


def record_advice(
    session: Session,
    queue: Queue,
    item: Item,
    rec: RecommendationInput,
    *,
    evidence: Sequence[str] = (),
    prompt_redacted: str | None = None,
) -> str:
    """Attach an external model's advice, with its evidence quotes and the prompt as it
    left (for audit), and route the item. Returns the item's new status."""
    if rec.label not in queue.labels:
        return route_failed(
            session, queue, item, "unavailable", f"unknown_label: {rec.label!r} not in queue"
        )
    recommendation = attach_recommendation(session, item, rec)
    recommendation.evidence = list(evidence)
    recommendation.prompt_redacted = prompt_redacted
    route_item(session, item, queue, recommendation)
    session.flush()
    return item.status


def route_failed(session: Session, queue: Queue, item: Item, ai_status: str, ai_error: str) -> str:
    """Send one item to people because the AI gave no usable advice, keeping the error."""
    route_without_recommendation(session, queue, [item], ai_status, ai_error[:2000])
    return item.status

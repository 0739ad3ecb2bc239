"""Reviewers at work: leases on items and human decisions.

A lease gives one reviewer exclusive use of an item for a while. Claiming is a single
conditional UPDATE, so two reviewers racing for the next item can never both get it; a
decision is a second conditional UPDATE that only succeeds while the item still awaits
review and is not leased to someone else. The unique key on reviews.item_id backs both up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from models import Item, Queue, Review, User
from models.base import utcnow
from review.services import audit
from review.services.errors import Conflict, NotFound, ValidationFailed

ACTIONS = ("approve", "override")


def _claimable(queue_id: int, now):  # type: ignore[no-untyped-def]
    return and_(
        Item.queue_id == queue_id,
        Item.status == "needs_review",
        or_(Item.leased_by_id.is_(None), Item.lease_expires_at < now),
    )


def current_lease(session: Session, queue: Queue, user: User) -> Item | None:
    """The item this user already holds in this queue, if the lease is still live."""
    return session.scalar(
        select(Item)
        .where(
            Item.queue_id == queue.id,
            Item.status == "needs_review",
            Item.leased_by_id == user.id,
            Item.lease_expires_at >= utcnow(),
        )
        .order_by(Item.lease_started_at)
        .limit(1)
    )


def claim_next(session: Session, queue: Queue, user: User, lease_seconds: int) -> Item | None:
    """Lease the next item to review (highest priority, then oldest) to this user.

    Returns the user's current live lease if they hold one, so a reload resumes the same item.
    """
    held = current_lease(session, queue, user)
    if held is not None:
        return held
    now = utcnow()
    candidate = (
        select(Item.id)
        .where(_claimable(queue.id, now))
        .order_by(Item.priority.desc(), Item.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Other reviewers skip rows being claimed instead of queueing behind them.
        candidate = candidate.with_for_update(skip_locked=True)
    claimed_id = session.scalar(
        update(Item)
        .where(Item.id == candidate.scalar_subquery(), _claimable(queue.id, now))
        .values(
            leased_by_id=user.id,
            lease_started_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    )
    if claimed_id is None:
        return None
    item = session.get(Item, claimed_id)
    session.refresh(item)
    return item


def release_lease(session: Session, item_id: int, user: User) -> None:
    session.execute(
        update(Item)
        .where(Item.id == item_id, Item.leased_by_id == user.id, Item.status == "needs_review")
        .values(leased_by_id=None, lease_started_at=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class DecisionInput:
    action: str
    label: str | None
    reason_code: str | None
    comment: str


def parse_decision(data: object, queue: Queue) -> DecisionInput:
    """Validate a decision against the queue's labels and reason codes."""
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    errors: dict[str, str] = {}
    action = data.get("action")
    if action not in ACTIONS:
        errors["action"] = "must be 'approve' or 'override'"
    label = data.get("label") or None
    reason_code = data.get("reason_code") or None
    comment = data.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > 5000:
        errors["comment"] = "must be a string of at most 5000 characters"
        comment = ""
    if action == "override":
        if label not in queue.labels:
            errors["label"] = f"must be one of: {', '.join(queue.labels)}"
        if reason_code not in queue.reason_codes:
            errors["reason_code"] = f"is required, one of: {', '.join(queue.reason_codes)}"
    elif action == "approve":
        if reason_code is not None and reason_code not in queue.reason_codes:
            errors["reason_code"] = f"must be one of: {', '.join(queue.reason_codes)}"
    if errors:
        raise ValidationFailed("invalid decision", errors)
    return DecisionInput(action, label, reason_code, comment)


def _conflict_for(session: Session, item: Item, user: User) -> Conflict:
    """Explain why a decision on this item cannot be taken now."""
    session.refresh(item)
    if item.status == "decided" and item.review is not None:
        who = item.review.reviewer.name if item.review.reviewer else "someone"
        return Conflict(
            f"already decided by {who} at {item.review.decided_at:%Y-%m-%d %H:%M:%S} UTC",
            {"item": "already decided"},
        )
    if item.status == "auto_approved":
        return Conflict("already auto-approved by the policy", {"item": "already decided"})
    if item.status == "pending":
        return Conflict("the item is still waiting for its AI recommendation", {"item": "pending"})
    return Conflict("the item is leased to another reviewer", {"item": "leased to someone else"})


def decide(session: Session, item_id: int, user: User, data: object) -> Review:
    """Record a reviewer's decision, once. Raises Conflict if decided or leased to another."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    decision = parse_decision(data, item.queue)
    ai_label = item.recommendation.label if item.recommendation else None
    if decision.action == "approve":
        if ai_label is None:
            raise ValidationFailed(
                "there is no AI recommendation to approve; override with a label",
                {"action": "approve needs an AI recommendation"},
            )
        final_label = ai_label
    else:
        final_label = decision.label
    now = utcnow()
    claimed = session.execute(
        update(Item)
        .where(
            Item.id == item.id,
            Item.status == "needs_review",
            or_(
                Item.leased_by_id.is_(None),
                Item.leased_by_id == user.id,
                Item.lease_expires_at < now,
            ),
        )
        .values(
            status="decided",
            final_label=final_label,
            decided_at=now,
            leased_by_id=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise _conflict_for(session, item, user)
    started = item.lease_started_at if item.leased_by_id == user.id else None
    review = Review(
        item_id=item.id,
        reviewer_id=user.id,
        action="approved" if decision.action == "approve" else "overridden",
        ai_label=ai_label,
        final_label=final_label,
        reason_code=decision.reason_code,
        comment=decision.comment,
        seconds_on_item=(now - started).total_seconds() if started else None,
        decided_at=now,
    )
    session.add(review)
    session.flush()
    session.refresh(item)
    audit.record(
        session,
        f"item.{review.action}",
        user=user,
        queue_id=item.queue_id,
        item_id=item.id,
        ai_label=ai_label,
        final_label=final_label,
        reason_code=decision.reason_code,
    )
    return review

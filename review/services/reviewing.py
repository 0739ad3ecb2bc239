"""Reviewers at work: leases on items and human decisions.

A lease gives one reviewer exclusive use of an item for a while; the open review page
extends it with a heartbeat, and it lapses when the page is closed or abandoned. Claiming is
a single conditional UPDATE (with `FOR UPDATE SKIP LOCKED` on PostgreSQL), so two reviewers
racing for the next item can never both get it. A decision is a second conditional UPDATE
that only succeeds while the item still awaits review and, from the review screen, only for
the lease holder. The unique keys on reviews.item_id and reviews.idempotency_key back both up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from models import Item, ItemEvent, Queue, Review, User
from models.base import utcnow
from review.services import audit
from review.services.errors import Conflict, NotFound, ValidationFailed

ACTIONS = ("approve", "override")
# Claiming walks priority groups from the top; a group can be momentarily all locked by
# other claimers, so a few fresh attempts are made before giving up.
CLAIM_ATTEMPTS = 5


class DecisionConflict(Conflict):
    """The item cannot be decided now. `decided_by`/`decided_at` are set if it was decided."""

    def __init__(
        self,
        message: str,
        fields: dict[str, str],
        decided_by: str | None = None,
        decided_at: datetime | None = None,
    ) -> None:
        super().__init__(message, fields)
        self.decided_by = decided_by
        self.decided_at = decided_at


def _claimable(queue_id: int, now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        Item.queue_id == queue_id,
        Item.status == "needs_review",
        or_(Item.leased_by_id.is_(None), Item.lease_expires_at < now),
    )


def _not_skipped_by(user: User):  # type: ignore[no-untyped-def]
    """Items this reviewer passed on stay with the others: never hand them back to them."""
    return ~exists().where(
        ItemEvent.item_id == Item.id, ItemEvent.kind == "skipped", ItemEvent.user_id == user.id
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
        .order_by(Item.lease_started_at, Item.id)
        .limit(1)
    )


def _top_priority(session: Session, queue: Queue, user: User, now: datetime) -> int | None:
    # ORDER BY ... LIMIT 1 rather than max(): with the anti-join on skips, PostgreSQL turns
    # max() into a full scan, while this stays a short backward walk of ix_items_claim.
    return session.scalar(
        select(Item.priority)
        .where(_claimable(queue.id, now), _not_skipped_by(user))
        .order_by(Item.priority.desc())
        .limit(1)
    )


def _claim_in_group(
    session: Session, queue: Queue, user: User, priority: int, now: datetime, lease_seconds: int
) -> int | None:
    """Lease the oldest claimable item of one priority; None if all are taken or locked.

    Within one priority the order is by id, a forward scan of ix_items_claim; ordering by
    "priority DESC, id" in one query would sort the whole group at a million items.
    """
    candidate = (
        select(Item.id)
        .where(_claimable(queue.id, now), _not_skipped_by(user), Item.priority == priority)
        .order_by(Item.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Other reviewers skip rows being claimed instead of queueing behind them.
        candidate = candidate.with_for_update(skip_locked=True)
    return session.scalar(
        update(Item)
        .where(Item.id == candidate.scalar_subquery(), _claimable(queue.id, now))
        .values(
            leased_by_id=user.id,
            lease_started_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            lease_heartbeat_at=now,
        )
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    )


def claim_next(session: Session, queue: Queue, user: User, lease_seconds: int) -> Item | None:
    """Lease the next item to review (highest priority, then oldest) to this user.

    Returns the user's current live lease if they hold one, so a reload resumes the same
    item. Items the user skipped are never handed back to them.
    """
    held = current_lease(session, queue, user)
    if held is not None:
        return held
    for _ in range(CLAIM_ATTEMPTS):
        now = utcnow()
        priority = _top_priority(session, queue, user, now)
        if priority is None:
            return None
        claimed_id = _claim_in_group(session, queue, user, priority, now, lease_seconds)
        if claimed_id is not None:
            # populate_existing: a copy already in the session predates the claim.
            return session.get(Item, claimed_id, populate_existing=True)
    return None


def heartbeat(session: Session, item_id: int, user: User, lease_seconds: int) -> bool:
    """Extend the user's lease on the item from now. False if they no longer hold it."""
    now = utcnow()
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.leased_by_id == user.id, Item.status == "needs_review")
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), lease_heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_lease(session: Session, item_id: int, user: User) -> bool:
    """Give the item back to the queue (the page was closed). False if the user held no lease."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.leased_by_id == user.id, Item.status == "needs_review")
        .values(
            leased_by_id=None, lease_started_at=None, lease_expires_at=None, lease_heartbeat_at=None
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


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


def parse_idempotency_key(key: object) -> str | None:
    """A submit's idempotency key: 8 to 64 letters, digits, '-' or '_'; None if absent."""
    if key is None or key == "":
        return None
    if (
        not isinstance(key, str)
        or not 8 <= len(key) <= 64
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    ):
        raise ValidationFailed(
            "invalid idempotency key",
            {"idempotency_key": "must be 8-64 letters, digits, '-' or '_'"},
        )
    return key


def already_decided(review: Review) -> DecisionConflict:
    """The conflict that says who decided the item, and when."""
    who = review.reviewer.name if review.reviewer else "someone"
    return DecisionConflict(
        f"already decided by {who} at {review.decided_at:%Y-%m-%d %H:%M:%S} UTC",
        {"item": "already decided"},
        decided_by=who,
        decided_at=review.decided_at,
    )


def conflict_for(session: Session, item: Item, user: User) -> DecisionConflict:
    """Explain why this user cannot act on this item now."""
    session.refresh(item)
    if item.status == "decided" and item.review is not None:
        return already_decided(item.review)
    if item.status == "auto_approved":
        return DecisionConflict("already auto-approved by the policy", {"item": "already decided"})
    if item.status == "pending":
        return DecisionConflict(
            "the item is still waiting for its AI recommendation", {"item": "pending"}
        )
    if item.leased_by_id is None:
        return DecisionConflict(
            "you no longer hold this item; it went back to the queue", {"item": "not leased to you"}
        )
    return DecisionConflict(
        "the item is leased to another reviewer", {"item": "leased to someone else"}
    )


def _final_label(decision: DecisionInput, item: Item, ai_label: str | None) -> str:
    if decision.action == "override":
        assert decision.label is not None  # parse_decision guarantees it
        return decision.label
    if ai_label is None:
        raise ValidationFailed(
            "there is no AI recommendation to approve; override with a label",
            {"action": "approve needs an AI recommendation"},
        )
    if ai_label not in item.queue.labels:
        # Possible after an escalation to a queue with other labels.
        raise ValidationFailed(
            f"the AI's label {ai_label!r} is not one of this queue's labels; override instead",
            {"action": "the AI's label is not a label of this queue"},
        )
    return ai_label


def _holder_condition(user: User, require_lease: bool, now: datetime):  # type: ignore[no-untyped-def]
    if require_lease:
        # The review screen: only the lease holder. An expired lease still counts while nobody
        # else has claimed the item (a claim moves leased_by_id to the new holder).
        return Item.leased_by_id == user.id
    return or_(
        Item.leased_by_id.is_(None), Item.leased_by_id == user.id, Item.lease_expires_at < now
    )


def decide(
    session: Session,
    item_id: int,
    user: User,
    data: object,
    *,
    idempotency_key: str | None = None,
    require_lease: bool = False,
) -> Review:
    """Record a reviewer's decision, once.

    Raises DecisionConflict (a Conflict) if the item is decided, or leased to another (with
    `require_lease`, unless this user holds the lease), or if this idempotency key was
    already used: a repeated submit changes nothing and says who decided when.
    """
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    decision = parse_decision(data, item.queue)
    key = parse_idempotency_key(idempotency_key)
    if key is not None:
        earlier = session.scalar(select(Review).where(Review.idempotency_key == key))
        if earlier is not None:
            raise already_decided(earlier)
    ai_label = item.recommendation.label if item.recommendation else None
    final_label = _final_label(decision, item, ai_label)
    now = utcnow()
    claimed = session.execute(
        update(Item)
        .where(
            Item.id == item.id,
            Item.status == "needs_review",
            _holder_condition(user, require_lease, now),
        )
        .values(
            status="decided",
            final_label=final_label,
            decided_at=now,
            leased_by_id=None,
            lease_expires_at=None,
            lease_heartbeat_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise conflict_for(session, item, user)
    started = item.lease_started_at if item.leased_by_id == user.id else None
    review = Review(
        item_id=item.id,
        reviewer_id=user.id,
        action="approved" if decision.action == "approve" else "overridden",
        ai_label=ai_label,
        final_label=final_label,
        reason_code=decision.reason_code,
        comment=decision.comment,
        seconds_on_item=max(0.0, (now - started).total_seconds()) if started else None,
        decided_at=now,
        idempotency_key=key,
    )
    session.add(review)
    session.add(
        ItemEvent(
            item_id=item.id,
            queue_id=item.queue_id,
            user_id=user.id,
            kind="decided",
            reason=decision.reason_code,
            comment=decision.comment,
            details={"action": review.action, "ai_label": ai_label, "final_label": final_label},
            created_at=now,
        )
    )
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
        seconds_on_item=review.seconds_on_item,
    )
    return review

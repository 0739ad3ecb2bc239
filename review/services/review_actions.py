"""What a reviewer may do besides approving or overriding: skip, escalate, undo.

Each acts only for the lease holder (undo: only for the decision's author), changes the
item in one conditional UPDATE so a race cannot apply it twice, and is written to the
item's history (item_events) and the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from models import Item, ItemEvent, Queue, Review, User
from models.base import utcnow
from review.services import audit, webhook_outbox
from review.services.errors import Conflict, NotFound, ValidationFailed
from review.services.reviewing import LEASE_CLEARED, conflict_for, lease_granted
from review.services.statements import rowcount

# Why a reviewer passes on an item, in the words the screen shows.
SKIP_REASONS: dict[str, str] = {
    "unsure": "Not sure: someone else should decide",
    "needs_expertise": "Needs expertise I do not have",
    "conflict_of_interest": "Conflict of interest",
    "broken_item": "The item is broken or unreadable",
    "other": "Another reason (say which in the comment)",
}
# How long after a decision its author may take it back.
UNDO_SECONDS = 10
MAX_COMMENT = 5000


def _comment(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_COMMENT:
        raise ValidationFailed(
            "invalid comment", {"comment": f"must be text of at most {MAX_COMMENT} characters"}
        )
    return value.strip()


def _item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}", {"item_id": "no such item"})
    return item


def _take_from_holder(session: Session, item: Item, user: User, **values: object) -> None:
    """Apply `values` if the user still holds the lease on the waiting item, else Conflict."""
    result = session.execute(
        update(Item)
        .where(Item.id == item.id, Item.status == "needs_review", Item.leased_by_id == user.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise conflict_for(session, item, user)
    session.refresh(item)


def skip(session: Session, item_id: int, user: User, reason: object, comment: object) -> ItemEvent:
    """Pass on the item: the lease is released and the item is not offered to this user again."""
    item = _item(session, item_id)
    if reason not in SKIP_REASONS:
        raise ValidationFailed(
            "a reason for skipping is required",
            {"skip_reason": f"is required, one of: {', '.join(SKIP_REASONS)}"},
        )
    text = _comment(comment)
    if reason == "other" and not text:
        raise ValidationFailed(
            "say why in the comment", {"skip_comment": "is required for 'other'"}
        )
    _take_from_holder(session, item, user, **LEASE_CLEARED)
    event = ItemEvent(
        item_id=item.id,
        queue_id=item.queue_id,
        user_id=user.id,
        kind="skipped",
        reason=str(reason),
        comment=text,
        details={},
    )
    session.add(event)
    audit.record(
        session, "item.skipped", user=user, queue_id=item.queue_id, item_id=item.id, reason=reason
    )
    session.flush()
    return event


def escalation_target(session: Session, queue: Queue) -> Queue | None:
    """The second-level queue this queue escalates to, if it has one."""
    if queue.escalation_queue_id is None:
        return None
    return session.get(Queue, queue.escalation_queue_id)


def escalate(session: Session, item_id: int, user: User, comment: object) -> Queue:
    """Move the item to its queue's escalation queue, awaiting review there. Returns that queue."""
    item = _item(session, item_id)
    source = item.queue
    target = escalation_target(session, source)
    if target is None:
        raise ValidationFailed(
            "this queue has no escalation queue", {"action": "escalation is not set up"}
        )
    text = _comment(comment)
    clash = session.scalar(
        select(Item.id).where(Item.queue_id == target.id, Item.external_id == item.external_id)
    )
    if clash is not None:
        raise Conflict(
            f"{target.name} already has an item {item.external_id}",
            {"item": "external id taken in the escalation queue"},
        )
    _take_from_holder(session, item, user, queue_id=target.id, **LEASE_CLEARED)
    details = {"from_queue": source.slug, "to_queue": target.slug}
    session.add(
        ItemEvent(
            item_id=item.id,
            queue_id=source.id,
            user_id=user.id,
            kind="escalated",
            comment=text,
            details=details,
        )
    )
    audit.record(
        session, "item.escalated", user=user, queue_id=source.id, item_id=item.id, **details
    )
    session.flush()
    return target


@dataclass(frozen=True)
class UndoWindow:
    """The decision a reviewer may still take back, and until when."""

    item_id: int
    external_id: str
    deadline: datetime


def undo_window(review: Review, now: datetime | None = None) -> UndoWindow | None:
    """The undo window of a fresh decision, or None once it has closed."""
    deadline = review.decided_at + timedelta(seconds=UNDO_SECONDS)
    if (now or utcnow()) > deadline:
        return None
    return UndoWindow(review.item_id, review.item.external_id, deadline)


def _downstream_after(session: Session, item: Item, decided_at: datetime) -> bool:
    # Anything recorded on the item after its decision (an export is a read and is not).
    return (
        session.scalar(
            select(ItemEvent.id).where(
                ItemEvent.item_id == item.id,
                ItemEvent.created_at > decided_at,
                ItemEvent.kind != "decided",
            )
        )
        is not None
    )


def undo(session: Session, item_id: int, user: User, lease_seconds: int) -> Item:
    """Take back the user's own decision within UNDO_SECONDS; the item returns to their lease.

    The review row is deleted in the same transaction that puts the item back to
    needs_review, so at most one review per item ever exists; the undo is audited.
    """
    item = _item(session, item_id)
    review = item.review
    if review is None or item.status != "decided":
        raise Conflict("there is no decision on this item to undo", {"item": "not decided"})
    if review.reviewer_id != user.id:
        raise Conflict(
            "only the reviewer who decided may undo", {"item": "decided by someone else"}
        )
    now = utcnow()
    if undo_window(review, now) is None:
        raise Conflict(
            f"the {UNDO_SECONDS}-second undo window has closed", {"item": "too late to undo"}
        )
    if _downstream_after(session, item, review.decided_at):
        raise Conflict("the item has changed since the decision", {"item": "changed since"})
    # The decision's webhook event is still held (the window is open): cancel it with the
    # undo. Refused if it was already claimed for sending.
    webhook_outbox.withdraw_for_undo(session, item.id)
    spent = timedelta(seconds=review.seconds_on_item or 0)
    result = session.execute(
        update(Item)
        .where(Item.id == item.id, Item.status == "decided", Item.queue_id == item.queue_id)
        .values(
            status="needs_review",
            final_label=None,
            decided_at=None,
            leased_by_id=user.id,
            # The clock on the item resumes where the decision stopped it.
            lease_started_at=now - spent,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            lease_heartbeat_at=now,
            lease_page=None,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise Conflict("the item has changed since the decision", {"item": "changed since"})
    undone = {
        "undone_action": review.action,
        "final_label": review.final_label,
        "reason_code": review.reason_code,
    }
    session.execute(delete(Review).where(Review.id == review.id))
    session.add(
        ItemEvent(
            item_id=item.id,
            queue_id=item.queue_id,
            user_id=user.id,
            kind="undone",
            details=undone,
            created_at=now,
        )
    )
    audit.record(
        session,
        "item.decision_undone",
        user=user,
        queue_id=item.queue_id,
        item_id=item.id,
        **undone,
    )
    session.flush()
    session.expire(item)
    return item


def take(session: Session, item_id: int, user: User, lease_seconds: int) -> Item:
    """Lease this item to the user, chosen from the queue page rather than handed out in
    queue order: it goes on their review screen next, its clock starting now.

    Only an item that awaits review and that is on no one else's screen: free, under a
    lapsed lease, or only lined up as another reviewer's next item (prefetched; their
    screen then moves on to another, see reviewing.lineup). The user's other leases in the
    queue (the item on their screen, the one prefetched) go back to the queue, so the
    review screen, which shows the lease held longest, shows this one. Items this user
    skipped may be taken: choosing one by hand is a decision to look again.
    """
    item = _item(session, item_id)
    now = utcnow()
    result = session.execute(
        update(Item)
        .where(
            Item.id == item.id,
            Item.status == "needs_review",
            or_(
                Item.leased_by_id.is_(None),
                Item.leased_by_id == user.id,
                Item.lease_expires_at < now,
                Item.lease_started_at.is_(None),
            ),
        )
        .values(**lease_granted(user, now, lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise _not_takeable(session, item, user, now)
    session.execute(
        update(Item)
        .where(
            Item.queue_id == item.queue_id,
            Item.leased_by_id == user.id,
            Item.status == "needs_review",
            Item.id != item.id,
        )
        .values(**LEASE_CLEARED)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.expire(item)
    return item


def _not_takeable(session: Session, item: Item, user: User, now: datetime) -> Conflict:
    """Why the item cannot be taken: who decided it, or who is reviewing it and until when."""
    session.refresh(item)
    if item.status == "needs_review" and item.leased_by_id not in (None, user.id):
        holder = session.get(User, item.leased_by_id)
        until = item.lease_expires_at or now
        return Conflict(
            f"it is on {holder.name if holder else 'another reviewer'}'s review screen "
            f"(held for them until {until:%H:%M:%S} UTC, and longer while their page stays "
            "open)",
            {"item": "leased to someone else"},
        )
    return conflict_for(session, item, user)

"""One item's trail for an admin: who decided it, under which policy, on what AI advice,
and whether the downstream system was told; with its history and its audit events.

Unlike the reviewer's history (review/services/item_history.py), nothing is hidden here:
an admin sees the stored routing reason, audit samples included.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import AuditEvent, Item, ItemEvent, Recommendation, Review, RoutingRecord, User
from models.webhook import WebhookEvent
from review.services.items import get_item

# An item's audit events shown on its page; the audit search has the rest.
MAX_EVENTS = 200


@dataclass(frozen=True)
class ItemTrail:
    item: Item
    recommendation: Recommendation | None
    routings: list[RoutingRecord]  # oldest first, with their policy versions
    review: Review | None  # the person's decision, with the reviewer
    events: list[ItemEvent]  # decisions, skips, escalations, undos, oldest first
    webhooks: list[WebhookEvent]  # outbox events for the item, with their deliveries
    audit_events: list[AuditEvent]  # oldest first
    more_audit_events: bool

    @property
    def decided_by(self) -> str | None:
        """Who made the final decision, in words: a person, the policy, or nobody yet."""
        if self.review is not None:
            reviewer: User = self.review.reviewer
            if reviewer.display_name:
                return f"{reviewer.display_name} ({reviewer.email})"
            return reviewer.email
        if self.item.status == "auto_approved" and self.routings:
            return f"the policy (v{self.routings[-1].policy_version.version}), automatically"
        return None


def item_trail(session: Session, item_id: int) -> ItemTrail:
    """Everything recorded about an item; raises NotFound for an unknown id."""
    item = get_item(session, item_id)
    routings = session.scalars(
        select(RoutingRecord)
        .where(RoutingRecord.item_id == item.id)
        .options(selectinload(RoutingRecord.policy_version))
        .order_by(RoutingRecord.id)
    ).all()
    review = session.scalar(
        select(Review).where(Review.item_id == item.id).options(selectinload(Review.reviewer))
    )
    events = session.scalars(
        select(ItemEvent)
        .where(ItemEvent.item_id == item.id)
        .options(selectinload(ItemEvent.user))
        .order_by(ItemEvent.id)
    ).all()
    webhooks = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.item_id == item.id)
        .options(selectinload(WebhookEvent.deliveries))
        .order_by(WebhookEvent.id)
    ).all()
    audit_events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.item_id == item.id)
        .order_by(AuditEvent.id)
        .limit(MAX_EVENTS + 1)
    ).all()
    return ItemTrail(
        item=item,
        recommendation=item.recommendation,
        routings=list(routings),
        review=review,
        events=list(events),
        webhooks=list(webhooks),
        audit_events=list(audit_events[:MAX_EVENTS]),
        more_audit_events=len(audit_events) > MAX_EVENTS,
    )

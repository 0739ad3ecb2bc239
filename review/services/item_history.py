"""An item's story for the review screen: arrival, AI advice, routing, people's actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models import Item, ItemEvent, RoutingRecord
from review.services.routing import reviewer_facing_reason

# The most recent entries shown; an item bounced around more than this is an outlier.
MAX_ENTRIES = 50


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str  # received | recommended | routed | decided | skipped | escalated | undone
    who: str | None
    text: str


def _event_text(event: ItemEvent) -> str:
    details = event.details or {}
    if event.kind == "decided":
        verb = "approved" if details.get("action") == "approved" else "overrode to"
        text = f"{verb} “{details.get('final_label')}”"
        return f"{text} ({event.reason})" if event.reason else text
    if event.kind == "skipped":
        return f"skipped: {event.reason}"
    if event.kind == "escalated":
        return f"escalated from {details.get('from_queue')} to {details.get('to_queue')}"
    if event.kind == "undone":
        return f"undid the decision “{details.get('final_label')}”"
    return event.kind


def item_history(session: Session, item: Item) -> list[HistoryEntry]:
    """Everything recorded about the item, oldest first (comments are included verbatim).

    Two queries whatever the item's story: joined loads, where select-in loads of the
    policy versions and the people would add queries to every review screen."""
    entries = [HistoryEntry(item.created_at, "received", None, "received")]
    if item.recommendation is not None:
        rec = item.recommendation
        entries.append(
            HistoryEntry(
                rec.created_at,
                "recommended",
                rec.model,
                f"AI suggested “{rec.label}” at {rec.confidence:.0%}",
            )
        )
    routings = session.scalars(
        select(RoutingRecord)
        .where(RoutingRecord.item_id == item.id)
        .options(joinedload(RoutingRecord.policy_version))
        .order_by(RoutingRecord.id)
    )
    for routing in routings:
        entries.append(
            HistoryEntry(
                routing.created_at,
                "routed",
                f"policy v{routing.policy_version.version}",
                # Reviewers must not tell audit samples apart: never the stored reason.
                f"routed to {'review' if routing.route == 'review' else routing.route}: "
                f"{reviewer_facing_reason(routing)}",
            )
        )
    events = session.scalars(
        select(ItemEvent)
        .where(ItemEvent.item_id == item.id)
        .options(joinedload(ItemEvent.user))
        .order_by(ItemEvent.id.desc())
        .limit(MAX_ENTRIES)
    )
    for event in reversed(list(events)):
        text = _event_text(event)
        if event.comment:
            text = f"{text}: “{event.comment}”"
        entries.append(
            HistoryEntry(
                event.created_at, event.kind, event.user.name if event.user else None, text
            )
        )
    entries.sort(key=lambda entry: entry.at)
    return entries

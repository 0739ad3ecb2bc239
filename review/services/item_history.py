"""An item's story for the review screen: arrival, AI advice, routing, people's actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Integer,
    Row,
    bindparam,
    cast,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from models import Item, ItemEvent, PolicyVersion, RoutingRecord, User
from review.services.review_actions import SKIP_REASONS
from review.services.routing import reviewer_facing_reason
from review.services.statements import built_once

# The most recent entries shown; an item bounced around more than this is an outlier.
MAX_ENTRIES = 50


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str  # received | recommended | routed | decided | skipped | escalated | undone
    who: str | None
    text: str


def _event_text(event: Row[Any]) -> str:
    """What a person did, in words (`event`: a row of _history_statement's events)."""
    details = event.details or {}
    if event.kind == "decided":
        verb = "approved" if details.get("action") == "approved" else "overrode to"
        text = f"{verb} “{details.get('final_label')}”"
        # A reason code as the decision form lists it: "wrong_category" reads "wrong category".
        return f"{text} ({event.reason.replace('_', ' ')})" if event.reason else text
    if event.kind == "skipped":
        return f"skipped: {SKIP_REASONS.get(event.reason, event.reason)}"
    if event.kind == "escalated":
        return f"escalated from {details.get('from_queue')} to {details.get('to_queue')}"
    if event.kind == "undone":
        return f"undid the decision “{details.get('final_label')}”"
    return str(event.kind)


@built_once
def _history_statement() -> CompoundSelect[Any]:
    """The item's people's actions (the latest MAX_ENTRIES) and its routings, as rows in
    one statement (every review screen runs it: one round trip, no objects to build).
    The events come first: their columns' types (JSON details) type the union's."""
    events = (
        select(
            literal("event").label("source"),
            ItemEvent.id.label("id"),
            ItemEvent.created_at.label("at"),
            ItemEvent.kind.label("kind"),
            ItemEvent.reason.label("reason"),
            ItemEvent.comment.label("comment"),
            ItemEvent.details.label("details"),
            User.display_name.label("display_name"),
            User.email.label("email"),
            # Typed: an untyped NULL in a subquery is text to PostgreSQL, no match for an int.
            cast(null(), Integer).label("version"),
        )
        .outerjoin(User, User.id == ItemEvent.user_id)
        .where(ItemEvent.item_id == bindparam("b_item"))
        .order_by(ItemEvent.id.desc())
        .limit(MAX_ENTRIES)
        .subquery()
    )
    routings = (
        select(
            literal("routed"),
            RoutingRecord.id,
            RoutingRecord.created_at,
            RoutingRecord.route,
            RoutingRecord.reason,
            null(),
            null(),
            null(),
            null(),
            PolicyVersion.version,
        )
        .join(PolicyVersion, PolicyVersion.id == RoutingRecord.policy_version_id)
        .where(RoutingRecord.item_id == bindparam("b_item"))
    )
    return union_all(select(events), routings)


def item_history(session: Session, item: Item) -> list[HistoryEntry]:
    """Everything recorded about the item, oldest first (comments are included verbatim).

    One query whatever the item's story (see _history_statement)."""
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
    rows = session.execute(_history_statement(), {"b_item": item.id}).all()
    # Routings, then events, each oldest first: the order the sort below keeps for ties.
    for row in sorted((r for r in rows if r.source == "routed"), key=lambda r: r.id):
        # Reviewers must not tell audit samples apart: never the stored reason.
        reason = reviewer_facing_reason(RoutingRecord(route=row.kind, reason=row.reason))
        entries.append(
            HistoryEntry(
                row.at,
                "routed",
                f"policy v{row.version}",
                f"routed to {'review' if row.kind == 'review' else row.kind}: {reason}",
            )
        )
    for row in sorted((r for r in rows if r.source == "event"), key=lambda r: r.id):
        text = _event_text(row)
        if row.comment:
            text = f"{text}: “{row.comment}”"
        # A user's name as User.name gives it: the display name, else the email.
        who = (row.display_name or row.email) if row.email is not None else None
        entries.append(HistoryEntry(row.at, row.kind, who, text))
    entries.sort(key=lambda entry: entry.at)
    return entries

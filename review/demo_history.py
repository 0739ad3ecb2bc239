"""The demo's past, written in bulk: weeks of tickets that were recommended, routed and
decided before the demo starts.

Going through the services ticket by ticket (ingest, recommend, route, decide) costs some
45 ms of CPU a decision, minutes for the demo's thousands: `flask seed demo` runs at every
`dev.py start`. So the past is planned with the real decision makers (ingest validation,
the recommenders, `routing.plan_route` with a seeded draw, `reviewing.parse_decision`) and
its rows are then inserted in a few executemany statements, in their final state and at
the times they happened. tests/test_demo_history.py checks that an item written here has
the same rows as one taken through the services and moved back to the same times.

One difference on purpose: audit events keep the time they were written (the load), as
the per-item path's backdating always did. The audit log records when things entered the
system and is never rewritten.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models import (
    AuditEvent,
    Item,
    ItemEvent,
    PolicyVersion,
    Queue,
    QueueWebhook,
    Recommendation,
    Review,
    RoutingRecord,
    User,
)
from models.base import utcnow
from review import demo_data
from review.demo_data import DemoTicket
from review.services import audit, ingest, reviewing
from review.services.routing import (
    RecommendationInput,
    RoutePlan,
    plan_route,
    recommendation_values,
)

# Recommends for a batch of tickets, one answer per ticket.
Recommend = Callable[[Sequence[DemoTicket]], list[RecommendationInput]]


@dataclass(frozen=True)
class PastDecision:
    """A reviewer's decision on a past item: the body they submitted, and when."""

    reviewer: User
    body: dict[str, Any]
    seconds_on_item: float
    decided_at: datetime


@dataclass(frozen=True)
class PastItem:
    """A past ticket as it went through the queue. `decision` is None when auto-approved."""

    ticket: DemoTicket
    arrived: datetime
    recommendation: RecommendationInput
    plan: RoutePlan
    decision: PastDecision | None


def keyword_recommend(queue: Queue, tickets: Sequence[DemoTicket]) -> list[RecommendationInput]:
    """The legacy rules engine's guesses, as the old pipeline sent them with each ticket
    (validated as an ingest into `queue` would)."""
    raw = []
    for ticket in tickets:
        label, confidence, rationale = demo_data.keyword_guess(ticket.payload)
        raw.append(
            {
                "external_id": ticket.external_id,
                "payload": ticket.payload,
                "recommendation": {
                    "label": label,
                    "confidence": confidence,
                    "model": demo_data.KEYWORD_MODEL,
                    "rationale": rationale,
                },
            }
        )
    parsed = []
    for start in range(0, len(raw), ingest.MAX_BATCH):
        inputs, _ = ingest.parse_ingest_body(
            {"items": raw[start : start + ingest.MAX_BATCH]}, queue
        )
        parsed.extend(inputs)
    return [item.recommendation for item in parsed if item.recommendation is not None]


def plan_era(
    tickets: Sequence[DemoTicket],
    arrivals: Sequence[datetime],
    recommend: Recommend,
    policy: PolicyVersion,
    queue: Queue,
    reviewers: Sequence[User],
    now: datetime,
    rng: random.Random,
) -> list[PastItem]:
    """What happened to each ticket of an era under `policy`: its recommendation, the
    route the policy gave it (audit draws from `rng`) and, when it went to a person, the
    decision of a demo reviewer."""
    recommendations = recommend(tickets)
    past = []
    for ticket, arrived, rec in zip(tickets, arrivals, recommendations, strict=True):
        plan = plan_route(policy, rec, rng)
        decision = None
        if plan.route == "review":
            body = demo_data.reviewer_decision(ticket, rec.label, rng)
            reviewing.parse_decision(body, queue)  # the same validation as a submit
            decision = PastDecision(
                reviewer=rng.choices(reviewers, weights=demo_data.REVIEWER_WEIGHTS)[0],
                body=body,
                seconds_on_item=demo_data.seconds_on_item(
                    ticket, body["action"] == "override", rng
                ),
                decided_at=demo_data.decision_time(arrived, now, rng),
            )
        past.append(PastItem(ticket, arrived, rec, plan, decision))
    return past


def write_past_items(
    session: Session, queue: Queue, policy: PolicyVersion, past: Sequence[PastItem]
) -> list[int]:
    """Insert the past items with their recommendation, routing, review, item event and
    audit events, as the services leave them once the item is decided. Returns the ids.

    The queue must have no webhook: the services would write outbox events (the demo
    queue is created in the same run, without one).
    """
    if not past:
        return []
    if session.scalar(select(QueueWebhook.id).where(QueueWebhook.queue_id == queue.id)):
        raise ValueError("write_past_items writes no webhook events; the queue has a webhook")
    items = Item.__table__
    ids = session.scalars(
        insert(items).returning(items.c.id, sort_by_parameter_order=True),
        [_item_row(queue, entry) for entry in past],
    ).all()
    session.execute(
        insert(Recommendation.__table__),
        [
            {"item_id": item_id, "created_at": entry.arrived, **_recommendation_row(entry)}
            for item_id, entry in zip(ids, past, strict=True)
        ],
    )
    session.execute(
        insert(RoutingRecord.__table__),
        [
            {"item_id": item_id, "created_at": entry.arrived, **entry.plan.record_values(policy)}
            for item_id, entry in zip(ids, past, strict=True)
        ],
    )
    decided = [(i, e, e.decision) for i, e in zip(ids, past, strict=True) if e.decision]
    if decided:
        session.execute(insert(Review.__table__), [_review_row(*d) for d in decided])
        session.execute(insert(ItemEvent.__table__), [_event_row(queue, *d) for d in decided])
    loaded_at = utcnow()
    session.execute(
        insert(AuditEvent.__table__),
        [
            {"created_at": loaded_at, **_audit_row(queue, policy, item_id, entry)}
            for item_id, entry in zip(ids, past, strict=True)
        ],
    )
    return list(ids)


def _final(entry: PastItem) -> tuple[str, str]:
    """(action, final label) as reviewing.decide records them; auto-approvals keep the
    AI's label."""
    rec_label = entry.recommendation.label
    if entry.decision is None:
        return "auto_approved", rec_label
    body = entry.decision.body
    if body["action"] == "override":
        return "overridden", body["label"]
    return "approved", rec_label


def _item_row(queue: Queue, entry: PastItem) -> dict[str, Any]:
    ticket, rec = entry.ticket, entry.recommendation
    decided_at = entry.decision.decided_at if entry.decision else entry.arrived
    return {
        "queue_id": queue.id,
        "external_id": ticket.external_id,
        "payload": ticket.payload,
        "payload_sha256": ingest.canonical_sha256(ticket.payload),
        "priority": ticket.priority,
        "status": "decided" if entry.decision else "auto_approved",
        "final_label": _final(entry)[1],
        "ai_status": "ok",
        "ai_error": None,
        "ai_label": rec.label,
        "ai_confidence": rec.confidence,
        "created_at": entry.arrived,
        "updated_at": decided_at,
        "routed_at": entry.arrived,
        "decided_at": decided_at,
        # A decision clears the lease but keeps when the reviewer claimed the item.
        "lease_started_at": (
            entry.decision.decided_at - timedelta(seconds=entry.decision.seconds_on_item)
            if entry.decision
            else None
        ),
    }


def _recommendation_row(entry: PastItem) -> dict[str, Any]:
    return recommendation_values(entry.recommendation)


def _review_row(item_id: int, entry: PastItem, decision: PastDecision) -> dict[str, Any]:
    action, final_label = _final(entry)
    return {
        "item_id": item_id,
        "reviewer_id": decision.reviewer.id,
        "action": action,
        "ai_label": entry.recommendation.label,
        "final_label": final_label,
        "reason_code": decision.body.get("reason_code"),
        "comment": decision.body.get("comment", ""),
        "seconds_on_item": decision.seconds_on_item,
        "decided_at": decision.decided_at,
        "idempotency_key": None,
    }


def _event_row(
    queue: Queue, item_id: int, entry: PastItem, decision: PastDecision
) -> dict[str, Any]:
    action, final_label = _final(entry)
    return {
        "item_id": item_id,
        "queue_id": queue.id,
        "user_id": decision.reviewer.id,
        "kind": "decided",
        "reason": decision.body.get("reason_code"),
        "comment": decision.body.get("comment", ""),
        "details": {
            "action": action,
            "ai_label": entry.recommendation.label,
            "final_label": final_label,
        },
        "created_at": decision.decided_at,
    }


def _audit_row(
    queue: Queue, policy: PolicyVersion, item_id: int, entry: PastItem
) -> dict[str, Any]:
    """The audit event reviewing.decide or routing.route_item records for the item."""
    action, final_label = _final(entry)
    rec, decision = entry.recommendation, entry.decision
    user = decision.reviewer if decision else None
    if decision is None:
        details = {
            "label": rec.label,
            "confidence": rec.confidence,
            "threshold": entry.plan.threshold,
            "policy_version": policy.version,
        }
    else:
        details = {
            "ai_label": rec.label,
            "final_label": final_label,
            "reason_code": decision.body.get("reason_code"),
            "seconds_on_item": decision.seconds_on_item,
        }
    return {
        "action": f"item.{action}",
        "actor_user_id": user.id if user else None,
        "actor": audit.actor_label(user),
        "queue_id": queue.id,
        "item_id": item_id,
        "details": details,
    }

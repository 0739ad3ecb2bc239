"""The demo's bulk-written past (review/demo_history.py) against the services it stands for.

An item written in bulk must have the rows an item taken through ingest, recommendation,
routing and the review screen has, once that item is moved back to the same times.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select, update

from models import AuditEvent, Item, ItemEvent, Recommendation, Review, RoutingRecord
from models.base import utcnow
from review import demo_data, demo_history
from review.services import accounts, ingest, queues, reviewing
from review.services.routing import (
    RecommendationInput,
    attach_recommendation,
    plan_route,
    route_item,
)


class FixedDraw(random.Random):
    """An audit draw that always comes out the same: below the rate audits, above it not."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


def backdate(
    session, item_id: int, arrived: datetime, decided: datetime, claimed: datetime | None
) -> None:
    """Move a service-made item's rows to these times, as the story has them happen."""
    params = {"b_item": item_id, "b_arrived": arrived, "b_decided": decided, "b_claimed": claimed}
    changes: list[tuple[Any, Any, dict[str, str]]] = [
        (Item.__table__, Item.__table__.c.id, {"created_at": "b_arrived", "routed_at": "b_arrived",
                                               "decided_at": "b_decided",
                                               "updated_at": "b_decided",
                                               "lease_started_at": "b_claimed"}),
        (Recommendation.__table__, Recommendation.__table__.c.item_id, {"created_at": "b_arrived"}),
        (RoutingRecord.__table__, RoutingRecord.__table__.c.item_id, {"created_at": "b_arrived"}),
        (Review.__table__, Review.__table__.c.item_id, {"decided_at": "b_decided"}),
        (ItemEvent.__table__, ItemEvent.__table__.c.item_id, {"created_at": "b_decided"}),
    ]  # fmt: skip
    for table, item_column, values in changes:
        session.execute(
            update(table)
            .where(item_column == bindparam("b_item"))
            .values({column: bindparam(param) for column, param in values.items()}),
            params,
        )
    session.expire_all()


def through_the_services(session, queue, policy, entry: demo_history.PastItem) -> int:
    """The item as the API, the worker and the review screen would have made it."""
    raw = {"external_id": "SERVICE-1", "payload": entry.ticket.payload}
    raw["priority"] = entry.ticket.priority
    inputs, _ = ingest.parse_ingest_body(raw, queue)
    item = ingest.ingest(session, queue, inputs)[0].item
    recommendation = attach_recommendation(session, item, entry.recommendation)
    route_item(session, item, queue, recommendation, policy=policy, plan=entry.plan)
    session.flush()
    decided, claimed = entry.arrived, None
    if entry.decision is not None:
        reviewer = entry.decision.reviewer
        assert reviewing.claim_next(session, queue, reviewer, 600).id == item.id
        # The reviewer read the ticket this long before submitting.
        session.execute(
            update(Item)
            .where(Item.id == item.id)
            .values(lease_started_at=utcnow() - timedelta(seconds=entry.decision.seconds_on_item))
        )
        session.expire(item)
        reviewing.decide(session, item.id, reviewer, entry.decision.body, require_lease=True)
        decided = entry.decision.decided_at
        claimed = decided - timedelta(seconds=entry.decision.seconds_on_item)
    backdate(session, item.id, entry.arrived, decided, claimed)
    return item.id


def rows_of(session, item_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row the item has, without ids, its external id, or the audit log's load time."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, table, column, skip in (
        ("item", Item.__table__, Item.__table__.c.id, {"id", "external_id"}),
        ("recommendation", Recommendation.__table__, Recommendation.__table__.c.item_id, set()),
        ("routing", RoutingRecord.__table__, RoutingRecord.__table__.c.item_id, set()),
        ("review", Review.__table__, Review.__table__.c.item_id, set()),
        ("event", ItemEvent.__table__, ItemEvent.__table__.c.item_id, set()),
        ("audit", AuditEvent.__table__, AuditEvent.__table__.c.item_id, {"created_at"}),
    ):
        rows = session.execute(select(table).where(column == item_id)).mappings().all()
        found[name] = [
            {k: v for k, v in row.items() if k not in skip | {"id", "item_id"}} for row in rows
        ]
    return found


def seconds_apart(rows: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Take out the time on the item (the service measures it to the microsecond)."""
    taken = [row.pop("seconds_on_item") for row in rows["review"]]
    taken += [
        row["details"].pop("seconds_on_item")
        for row in rows["audit"]
        if "ai_label" in row["details"]
    ]
    return taken


@pytest.mark.parametrize(
    ("label", "confidence", "draw", "body", "expected"),
    [
        # Auto-approved: spam above its 0.90 threshold, not drawn for audit.
        ("spam", 0.97, 0.9, None, ("auto_approved", False)),
        # Drawn for the blind audit, then approved by the reviewer.
        ("spam", 0.97, 0.1, {"action": "approve"}, ("decided", True)),
        # Below the threshold, reviewed and overridden with a reason code.
        (
            "refund",
            0.62,
            0.5,
            {
                "action": "override",
                "label": "bug_report",
                "reason_code": "primary_issue_differs",
                "comment": "The other problem is context; the customer wants bug_report.",
            },
            ("decided", False),
        ),
    ],
)
def test_a_bulk_written_item_has_the_rows_the_services_write(
    session, label, confidence, draw, body, expected
):
    owner = accounts.create_user(session, "owner@example.com", "policy_owner", "password123")
    reviewer = accounts.create_user(session, "rev@example.com", "reviewer", "password123")
    queue = queues.create_queue(session, demo_data.DEMO_QUEUE, owner)
    policy = queues.create_policy_version(session, queue, demo_data.DEMO_POLICY, owner)
    rec = RecommendationInput(
        source="local",
        model="tfidf-logreg",
        model_version="local-v1",
        label=label,
        confidence=confidence,
        rationale="local-v1 learned from past decisions; next: refund 0.01",
        latency_ms=0.4,
    )
    plan = plan_route(policy, rec, FixedDraw(draw))
    arrived = utcnow().replace(microsecond=0) - timedelta(days=3, hours=5)
    decision = None
    if body is not None:
        decision = demo_history.PastDecision(reviewer, body, 42.5, arrived + timedelta(minutes=37))
    entry = demo_history.PastItem(demo_data.history_tickets()[0], arrived, rec, plan, decision)

    bulk_id = demo_history.write_past_items(session, queue, policy, [entry])[0]
    service_id = through_the_services(session, queue, policy, entry)

    bulk, service = rows_of(session, bulk_id), rows_of(session, service_id)
    assert [len(rows) for rows in bulk.values()] == [len(rows) for rows in service.values()]
    bulk_seconds, service_seconds = seconds_apart(bulk), seconds_apart(service)
    assert bulk_seconds == [42.5, 42.5] if body else bulk_seconds == []
    assert service_seconds == pytest.approx(bulk_seconds, abs=1.0)
    for name in bulk:
        for b_row, s_row in zip(bulk[name], service[name], strict=True):
            assert {k: v for k, v in b_row.items() if s_row[k] != v} == {}, name
    assert bulk == service
    assert (bulk["item"][0]["status"], bulk["routing"][0]["audit"]) == expected
    session.rollback()

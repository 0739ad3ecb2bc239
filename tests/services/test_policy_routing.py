"""Routing under a policy with audit sampling and recalibration."""

from __future__ import annotations

from models import Item
from review.db import db_session
from review.domain.recalibration import Platt, Recalibration
from review.services import queues
from review.services.routing import (
    RecommendationInput,
    attach_recommendation,
    reviewer_facing_reason,
    route_item,
)


class Draws:
    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def _route(session, queue, policy, confidence, draws, external_id):
    item = Item(queue_id=queue.id, external_id=external_id, payload={}, payload_sha256="")
    session.add(item)
    session.flush()
    rec = attach_recommendation(
        session, item, RecommendationInput("external", "m", "approve", confidence)
    )
    return item, route_item(session, item, queue, rec, policy=policy, rng=draws)


def test_audit_items_look_like_any_other_review_item_to_reviewers(app, factory):
    made, owner = factory.queue(), factory.user("policy_owner")
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, made.slug)
        policy = queues.create_policy_version(
            session,
            queue,
            {"default_threshold": 0.9, "audit_rate": 0.1, "note": "n"},
            session.merge(owner),
        )
        draws = Draws(0.05, 0.5)  # only the two would-be auto-approvals draw
        low, low_record = _route(session, queue, policy, 0.5, draws, "low")
        audited, audit_record = _route(session, queue, policy, 0.95, draws, "audit")
        auto, auto_record = _route(session, queue, policy, 0.97, draws, "auto")
        assert (low.status, audited.status, auto.status) == (
            "needs_review",
            "needs_review",
            "auto_approved",
        )
        assert [r.inclusion_probability for r in (low_record, audit_record, auto_record)] == [
            1.0,
            0.1,
            0.0,
        ]
        assert [r.audit for r in (low_record, audit_record, auto_record)] == [False, True, False]
        assert "audit sample" in audit_record.reason  # the audit trail says what happened
        assert reviewer_facing_reason(audit_record) == reviewer_facing_reason(low_record)


def test_recalibration_is_applied_before_the_threshold(app, factory):
    made, owner = factory.queue(), factory.user("policy_owner")
    # Overconfident AI: raw 0.95 is really about 0.83, which is under the 0.9 threshold.
    recalibration = Recalibration("platt", {"approve": Platt(0.5, 0.0)}).to_dict()
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, made.slug)
        policy = queues.create_policy_version(
            session,
            queue,
            {
                "default_threshold": 0.8,
                "thresholds": {"approve": 0.9},
                "recalibration": recalibration,
                "note": "calibrated",
            },
            session.merge(owner),
        )
        item, record = _route(session, queue, policy, 0.95, Draws(), "over")
        assert item.status == "needs_review"
        assert record.confidence == Platt(0.5, 0.0).apply(0.95)
        assert "recalibrated from 0.950" in record.reason
        sure, _ = _route(session, queue, policy, 0.999, Draws(0.99), "sure")
        assert sure.status == "auto_approved"  # 0.999 recalibrates to about 0.97

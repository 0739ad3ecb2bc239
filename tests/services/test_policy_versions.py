"""Policy versions: four eyes, activation, rollback, re-routing waiting items, audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models import AuditEvent, Item
from models.base import utcnow
from review.db import db_session
from review.services import policy_versions, queues
from review.services.errors import Conflict, Forbidden, ValidationFailed
from tests.web.ui_helpers import add_items


@pytest.fixture
def four_eyes(app, factory):
    queue = factory.queue()
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        author = factory.user("policy_owner")
        policy_versions.update_settings(
            session, q, {"require_four_eyes": True}, session.merge(author)
        )
        session.commit()
    return queue, author, factory.user("policy_owner")


def _actions(session, queue_id):
    return [
        e.action
        for e in session.query(AuditEvent).filter_by(queue_id=queue_id).order_by(AuditEvent.id)
    ]


def test_a_version_waits_for_a_second_owner_and_then_takes_effect(app, four_eyes):
    queue, author, second = four_eyes
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        body = {"default_threshold": 0.9, "audit_rate": 0.05, "note": "tighter"}
        version = queues.create_policy_version(session, q, body, session.merge(author))
        assert version.status == "pending_approval"
        assert queues.current_policy(session, q).version == 1  # still the old one
        with pytest.raises(Forbidden):
            policy_versions.approve(session, q, 2, session.merge(author))
        policy_versions.approve(session, q, 2, session.merge(second))
        session.commit()
        active = queues.current_policy(session, q)
        assert (active.version, active.audit_rate, active.decided_by_id) == (2, 0.05, second.id)
        assert policy_versions.get_version(session, q, 1).status == "retired"
        with pytest.raises(Conflict):
            policy_versions.approve(session, q, 2, session.merge(second))
        actions = _actions(session, q.id)
        assert actions.count("policy.created") == 1 and "policy.approved" in actions
        assert actions.index("policy.approved") < actions.index("policy.activated")
        assert "policy.settings_changed" in actions


def test_a_rejected_version_never_takes_effect(app, four_eyes):
    queue, author, second = four_eyes
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        queues.create_policy_version(
            session, q, {"default_threshold": 0.5, "note": "loose"}, session.merge(author)
        )
        with pytest.raises(ValidationFailed):
            policy_versions.reject(session, q, 2, session.merge(second), " ")
        policy_versions.reject(session, q, 2, session.merge(second), "no evidence for 0.5")
        session.commit()
        assert queues.current_policy(session, q).version == 1
        assert policy_versions.get_version(session, q, 2).status == "rejected"
        with pytest.raises(Conflict):
            policy_versions.approve(session, q, 2, session.merge(second))


def test_rollback_makes_a_new_version_equal_to_the_old(app, factory):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        user = session.merge(owner)
        queues.create_policy_version(
            session,
            q,
            {
                "default_threshold": 0.9,
                "thresholds": {"approve": 0.8},
                "audit_rate": 0.1,
                "note": "v2",
            },
            user,
        )
        queues.create_policy_version(session, q, {"default_threshold": 0.5, "note": "v3"}, user)
        restored = policy_versions.rollback(session, q, 2, user, "v3 let errors through")
        session.commit()
        assert restored.version == 4 and restored.status == "active"
        assert (restored.thresholds, restored.default_threshold, restored.audit_rate) == (
            {"approve": 0.8},
            0.9,
            0.1,
        )
        assert restored.note == "Rollback to version 2: v3 let errors through"
        assert policy_versions.diff(q, policy_versions.get_version(session, q, 2), restored) == []


def test_reroute_preview_then_reroute_unclaimed_waiting_items(app, factory):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    reviewer = factory.user("reviewer")
    add_items(app, queue.slug, 4, confidence=0.93, prefix="high")
    add_items(app, queue.slug, 2, confidence=0.5, prefix="low")
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        leased = session.query(Item).filter_by(queue_id=q.id, external_id="high-1").one()
        leased.leased_by_id = reviewer.id
        leased.lease_expires_at = utcnow() + timedelta(minutes=5)
        version = queues.create_policy_version(
            session,
            q,
            {"default_threshold": 0.9, "audit_rate": 0.5, "note": "v2"},
            session.merge(owner),
        )
        preview = policy_versions.preview_reroute(session, q, version)
        assert (preview.waiting, preview.would_leave_review) == (5, 3)
        assert preview.expected_audited == 1.5
        # Draws: 0.1 (audited, under 0.5), then 0.9 and 0.9 (auto-approved).
        rng = iter([0.1, 0.9, 0.9])

        class Draws:
            def random(self):
                return next(rng)

        result = policy_versions.reroute_waiting(session, q, version, session.merge(owner), Draws())
        session.commit()
        assert (result.rerouted, result.auto_approved, result.audited) == (3, 2, 1)
        statuses = dict(session.query(Item.external_id, Item.status).filter_by(queue_id=q.id))
        assert statuses["high-1"] == "needs_review"  # leased: left alone
        assert statuses["low-1"] == statuses["low-2"] == "needs_review"
        assert sorted(statuses[f"high-{i}"] for i in (2, 3, 4)) == [
            "auto_approved",
            "auto_approved",
            "needs_review",
        ]
        audited = [i for i in session.query(Item).filter_by(queue_id=q.id) if i.routings[-1].audit]
        assert len(audited) == 1 and audited[0].routings[-1].inclusion_probability == 0.5
        assert "policy.rerouted" in _actions(session, q.id)


def test_settings_are_validated(app, factory):
    queue = factory.queue()
    with app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        for bad in (
            {"require_four_eyes": "yes"},
            {"review_sla_hours": 0},
            {"review_sla_hours": "x"},
        ):
            with pytest.raises(ValidationFailed) as exc:
                policy_versions.update_settings(session, q, bad, None)
            assert set(exc.value.fields) <= {"require_four_eyes", "review_sla_hours"}

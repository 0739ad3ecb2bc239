"""Skip, escalate, undo, heartbeats and idempotent decisions, against real transactions."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import AuditEvent, Item, ItemEvent, Queue, Review, User
from models.base import utcnow
from review.db import db_session
from review.services import item_history, review_actions, reviewing
from review.services.errors import Conflict, ValidationFailed
from tests.services.test_reviewing import add_items, claim


def run(app, fn, *args, **kwargs):
    """Call fn(session, ...) with users resolved from ids; commit; return its result."""
    with app.app_context():
        session = db_session()
        result = fn(session, *args, **kwargs)
        session.commit()
        return result


def user_row(session, user_id):
    return session.get(User, user_id)


def skip(app, item_id, user_id, reason="unsure", comment=""):
    return run(
        app,
        lambda s: review_actions.skip(s, item_id, user_row(s, user_id), reason, comment).id,
    )


def item_state(app, item_id):
    with app.app_context():
        item = db_session().get(Item, item_id)
        return item.status, item.queue_id, item.leased_by_id


def test_skip_releases_the_item_to_others_but_not_back_to_the_skipper(app, factory):
    queue = factory.queue()
    first, second = add_items(app, queue.slug, 2)
    alice, bob = factory.user(), factory.user()
    assert claim(app, queue.slug, alice.id) == first
    skip(app, first, alice.id, "needs_expertise")
    assert item_state(app, first) == ("needs_review", queue.id, None)
    assert claim(app, queue.slug, alice.id) == second  # not the skipped one again
    assert claim(app, queue.slug, bob.id) == first  # others still get it
    with app.app_context():
        event = db_session().scalar(select(ItemEvent).where(ItemEvent.kind == "skipped"))
        assert (event.item_id, event.user_id, event.reason) == (first, alice.id, "needs_expertise")
        assert db_session().scalar(select(AuditEvent.id).where(AuditEvent.action == "item.skipped"))


def test_skipped_items_come_back_to_a_lone_reviewer_once_nothing_else_is_left(app, factory):
    queue = factory.queue()
    first, second, third = add_items(app, queue.slug, 3)
    alice, bob = factory.user(), factory.user()
    assert claim(app, queue.slug, alice.id) == first
    skip(app, first, alice.id)
    assert claim(app, queue.slug, alice.id) == second
    skip(app, second, alice.id)
    assert claim(app, queue.slug, alice.id) == third  # fresh items before skipped ones
    run(app, lambda s: reviewing.release_lease(s, third, user_row(s, alice.id)))
    assert claim(app, queue.slug, bob.id) == first  # others get a skipped item first
    run(app, lambda s: reviewing.release_lease(s, first, user_row(s, bob.id)))
    assert claim(app, queue.slug, alice.id) == third
    skip(app, third, alice.id)
    # Only skipped items are left: they come back, the one passed on longest ago first,
    # so skipping again moves on to the next rather than showing the same one forever.
    assert claim(app, queue.slug, alice.id) == first
    skip(app, first, alice.id)
    assert claim(app, queue.slug, alice.id) == second
    skip(app, second, alice.id)
    assert claim(app, queue.slug, alice.id) == third
    assert item_state(app, third) == ("needs_review", queue.id, alice.id)


@pytest.mark.parametrize(
    "reason, comment, field",
    [(None, "", "skip_reason"), ("bored", "", "skip_reason"), ("other", "  ", "skip_comment")],
)
def test_skip_needs_a_known_reason_and_changes_nothing_without(
    app, factory, reason, comment, field
):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice = factory.user()
    claim(app, queue.slug, alice.id)
    with pytest.raises(ValidationFailed) as error:
        skip(app, item_id, alice.id, reason, comment)
    assert field in error.value.fields
    assert item_state(app, item_id) == ("needs_review", queue.id, alice.id)


def test_only_the_lease_holder_may_skip(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    claim(app, queue.slug, alice.id)
    with pytest.raises(Conflict, match="leased to another reviewer"):
        skip(app, item_id, bob.id)


def escalation_pair(app, factory):
    senior = factory.queue("senior", name="Senior review")
    first_line = factory.queue("first-line")
    with app.app_context():
        session = db_session()
        session.get(Queue, first_line.id).escalation_queue_id = senior.id
        session.commit()
    return first_line, senior


def test_escalate_moves_the_item_to_the_senior_queue_with_history(app, factory):
    first_line, senior = escalation_pair(app, factory)
    (item_id,) = add_items(app, first_line.slug, 1)
    alice, senior_reviewer = factory.user(), factory.user()
    claim(app, first_line.slug, alice.id)
    target = run(
        app,
        lambda s: review_actions.escalate(s, item_id, user_row(s, alice.id), "legal threat").slug,
    )
    assert target == "senior"
    assert item_state(app, item_id) == ("needs_review", senior.id, None)
    assert claim(app, first_line.slug, factory.user().id) is None
    assert claim(app, senior.slug, senior_reviewer.id) == item_id
    with app.app_context():
        session = db_session()
        history = item_history.item_history(session, session.get(Item, item_id))
        escalated = [entry for entry in history if entry.kind == "escalated"]
        assert escalated[0].text == "escalated from first-line to senior: “legal threat”"
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "item.escalated"))
        assert audit.details == {"from_queue": "first-line", "to_queue": "senior"}


def test_a_queue_without_escalation_target_refuses_escalation(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice = factory.user()
    claim(app, queue.slug, alice.id)
    with pytest.raises(ValidationFailed, match="no escalation queue"):
        run(app, lambda s: review_actions.escalate(s, item_id, user_row(s, alice.id), ""))
    assert item_state(app, item_id) == ("needs_review", queue.id, alice.id)


def decide(app, item_id, user_id, data=None, **kwargs):
    return run(
        app,
        lambda s: (
            reviewing.decide(
                s, item_id, user_row(s, user_id), data or {"action": "approve"}, **kwargs
            ).id
        ),
    )


def undo(app, item_id, user_id):
    return run(app, lambda s: review_actions.undo(s, item_id, user_row(s, user_id), 300).id)


def test_undo_returns_the_item_to_its_reviewer_and_is_audited(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    claim(app, queue.slug, alice.id)
    decide(app, item_id, alice.id)
    undo(app, item_id, alice.id)
    assert item_state(app, item_id) == ("needs_review", queue.id, alice.id)
    assert claim(app, queue.slug, bob.id) is None  # it is back in Alice's hands
    with app.app_context():
        session = db_session()
        assert session.scalar(select(func.count()).select_from(Review)) == 0
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions[-2:] == ["item.approved", "item.decision_undone"]
    # And it can be decided again, once.
    decide(
        app,
        item_id,
        alice.id,
        {"action": "override", "label": "reject", "reason_code": "wrong_label"},
    )
    with app.app_context():
        assert db_session().get(Item, item_id).final_label == "reject"


def test_undo_is_refused_to_others_after_the_window_and_after_later_events(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    claim(app, queue.slug, alice.id)
    decide(app, item_id, alice.id)
    with pytest.raises(Conflict, match="only the reviewer who decided"):
        undo(app, item_id, bob.id)
    with app.app_context():
        session = db_session()
        session.execute(
            update(Review).values(
                decided_at=utcnow() - timedelta(seconds=review_actions.UNDO_SECONDS + 1)
            )
        )
        session.commit()
    with pytest.raises(Conflict, match="undo window has closed"):
        undo(app, item_id, alice.id)
    assert item_state(app, item_id)[0] == "decided"


def test_a_repeated_submit_with_the_same_key_changes_nothing(app, factory):
    queue = factory.queue()
    first, second = add_items(app, queue.slug, 2)
    alice = factory.user()
    claim(app, queue.slug, alice.id)
    decide(app, first, alice.id, idempotency_key="key-0000000001", require_lease=True)
    with pytest.raises(reviewing.DecisionConflict, match=f"already decided by {alice.email} at"):
        decide(app, first, alice.id, idempotency_key="key-0000000001", require_lease=True)
    claim(app, queue.slug, alice.id)
    # The same key on another item is the same submit replayed, not a new decision.
    with pytest.raises(Conflict, match="already decided"):
        decide(app, second, alice.id, idempotency_key="key-0000000001", require_lease=True)
    with app.app_context():
        assert db_session().scalar(select(func.count()).select_from(Review)) == 1


def test_with_require_lease_only_the_holder_decides_even_an_unleased_item(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice = factory.user()
    with pytest.raises(Conflict, match="no longer hold this item"):
        decide(app, item_id, alice.id, require_lease=True)
    claim(app, queue.slug, alice.id)
    with app.app_context():  # the lease lapsed, but nobody else took the item
        session = db_session()
        session.execute(update(Item).values(lease_expires_at=utcnow() - timedelta(seconds=5)))
        session.commit()
    decide(app, item_id, alice.id, require_lease=True)
    assert item_state(app, item_id)[0] == "decided"


def test_heartbeat_keeps_the_lease_and_fails_once_someone_else_holds_it(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    claim(app, queue.slug, alice.id, lease_seconds=1)
    assert run(app, lambda s: reviewing.heartbeat(s, item_id, user_row(s, alice.id), 300))
    assert claim(app, queue.slug, bob.id) is None  # extended: not claimable
    with app.app_context():
        session = db_session()
        session.execute(update(Item).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert claim(app, queue.slug, bob.id) == item_id
    assert not run(app, lambda s: reviewing.heartbeat(s, item_id, user_row(s, alice.id), 300))


def test_release_gives_the_item_back_at_once(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    claim(app, queue.slug, alice.id)
    assert run(app, lambda s: reviewing.release_lease(s, item_id, user_row(s, alice.id)))
    assert claim(app, queue.slug, bob.id) == item_id


def test_claim_follows_priority_then_age_across_groups(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, 6)
    priorities = [0, 3, 0, 3, -1, 7]
    with app.app_context():
        session = db_session()
        for item_id, priority in zip(ids, priorities, strict=True):
            session.execute(update(Item).where(Item.id == item_id).values(priority=priority))
        session.commit()
    order = [claim(app, queue.slug, factory.user().id) for _ in ids]
    assert order == [ids[5], ids[1], ids[3], ids[0], ids[2], ids[4]]


def test_history_never_tells_a_reviewer_an_item_is_an_audit_sample(app, factory):
    """Audits are blind: the history shows the same routing words for every reviewed item."""
    from models import Item, RoutingRecord
    from review.db import db_session
    from review.services.item_history import item_history

    queue = factory.queue()
    with app.app_context():
        session = db_session()
        from review.services import ingest, queues

        q = queues.get_queue(session, queue.slug)
        parsed, _ = ingest.parse_ingest_body(
            {
                "external_id": "audit-1",
                "payload": {"text": "x"},
                "recommendation": {"label": "approve", "confidence": 0.4, "model": "m"},
            },
            q,
        )
        (result,) = ingest.ingest(session, q, parsed)
        routing = session.query(RoutingRecord).filter_by(item_id=result.item.id).one()
        routing.reason = "audit sample: confidence 0.990 >= threshold 0.900"
        routing.audit = True
        session.commit()
        texts = " ".join(
            str(vars(entry)) for entry in item_history(session, session.get(Item, result.item.id))
        )
    assert "audit" not in texts
    assert "threshold" not in texts

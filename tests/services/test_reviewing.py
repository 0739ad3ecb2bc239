"""Leases and decisions at the service level, against real transactions."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import Item, Review, User
from models.base import utcnow
from review.db import db_session
from review.services import ingest, queues, reviewing
from review.services.errors import Conflict, ValidationFailed


def add_items(app, queue_slug, count, *, confidence=0.4, label="approve"):
    """Ingest items that bring a low-confidence external recommendation: all go to review."""
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue_slug)
        body = {
            "items": [
                {
                    "external_id": f"ext-{i}",
                    "payload": {"text": f"ticket {i}"},
                    "priority": 0,
                    "recommendation": {"label": label, "confidence": confidence, "model": "m"},
                }
                for i in range(count)
            ]
        }
        items, _ = ingest.parse_ingest_body(body, queue)
        results = ingest.ingest(session, queue, items)
        session.commit()
        return [r.item.id for r in results]


def claim(app, slug, user_id, lease_seconds=300):
    with app.app_context():
        session = db_session()
        user = session.get(User, user_id)
        item = reviewing.claim_next(session, queues.get_queue(session, slug), user, lease_seconds)
        session.commit()
        return item.id if item else None


def test_two_reviewers_never_get_the_same_item(app, factory):
    queue = factory.queue()
    add_items(app, queue.slug, 2)
    alice, bob = factory.user(), factory.user()
    first, second = claim(app, queue.slug, alice.id), claim(app, queue.slug, bob.id)
    assert first is not None and second is not None and first != second
    assert claim(app, queue.slug, factory.user().id) is None  # nothing left


def test_reload_resumes_the_same_lease(app, factory):
    queue = factory.queue()
    add_items(app, queue.slug, 3)
    alice = factory.user()
    assert claim(app, queue.slug, alice.id) == claim(app, queue.slug, alice.id)


def test_higher_priority_is_claimed_first(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, 3)
    with app.app_context():
        session = db_session()
        session.execute(update(Item).where(Item.id == ids[2]).values(priority=5))
        session.commit()
    assert claim(app, queue.slug, factory.user().id) == ids[2]


def test_expired_lease_returns_the_item_to_the_queue(app, factory):
    queue = factory.queue()
    (item_id,) = add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    assert claim(app, queue.slug, alice.id) == item_id
    assert claim(app, queue.slug, bob.id) is None
    with app.app_context():
        session = db_session()
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert claim(app, queue.slug, bob.id) == item_id


def decide(app, item_id, user_id, data):
    with app.app_context():
        session = db_session()
        review = reviewing.decide(session, item_id, session.get(User, user_id), data)
        session.commit()
        return review.final_label


def test_override_records_label_reason_and_time(app, factory):
    queue = factory.queue()
    add_items(app, queue.slug, 1)
    alice = factory.user()
    item_id = claim(app, queue.slug, alice.id)
    data = {"action": "override", "label": "reject", "reason_code": "wrong_label", "comment": "no"}
    assert decide(app, item_id, alice.id, data) == "reject"
    with app.app_context():
        session = db_session()
        item = session.get(Item, item_id)
        assert (item.status, item.final_label, item.leased_by_id) == ("decided", "reject", None)
        review = item.review
        assert (review.action, review.ai_label, review.reason_code) == (
            "overridden",
            "approve",
            "wrong_label",
        )
        assert review.seconds_on_item is not None and review.seconds_on_item >= 0


def test_second_decision_is_refused_and_changes_nothing(app, factory):
    queue = factory.queue()
    add_items(app, queue.slug, 1)
    alice = factory.user()
    item_id = claim(app, queue.slug, alice.id)
    decide(app, item_id, alice.id, {"action": "approve"})
    with pytest.raises(Conflict, match=f"already decided by {alice.email}"):
        decide(
            app,
            item_id,
            alice.id,
            {"action": "override", "label": "reject", "reason_code": "wrong_label"},
        )
    with app.app_context():
        session = db_session()
        assert session.get(Item, item_id).final_label == "approve"
        assert session.scalar(select(func.count()).select_from(Review)) == 1


def decide_with_key(app, item_id, user_id, data, key):
    with app.app_context():
        session = db_session()
        user = session.get(User, user_id)
        review = reviewing.decide(
            session, item_id, user, data, idempotency_key=key, require_lease=True
        )
        session.commit()
        return review.final_label


def test_a_used_idempotency_key_is_refused_on_any_item_and_changes_nothing(app, factory):
    # The key is checked inside the decision's UPDATE: a key already spent on one item must
    # not decide another, whether the repeated submit is valid or not.
    queue = factory.queue()
    add_items(app, queue.slug, 2)
    alice = factory.user()
    first = claim(app, queue.slug, alice.id)
    decide_with_key(app, first, alice.id, {"action": "approve"}, "key-0001")
    second = claim(app, queue.slug, alice.id)
    assert second != first
    with pytest.raises(Conflict, match=f"already decided by {alice.email}"):
        decide_with_key(app, second, alice.id, {"action": "approve"}, "key-0001")
    own_label = {"action": "override", "label": "approve", "reason_code": "wrong_label"}
    with pytest.raises(Conflict, match=f"already decided by {alice.email}"):
        decide_with_key(app, second, alice.id, own_label, "key-0001")
    with app.app_context():
        session = db_session()
        item = session.get(Item, second)
        assert (item.status, item.leased_by_id) == ("needs_review", alice.id)
        assert session.scalar(select(func.count()).select_from(Review)) == 1
    assert decide_with_key(app, second, alice.id, {"action": "approve"}, "key-0002") == "approve"


def test_decision_on_item_leased_to_someone_else_is_refused(app, factory):
    queue = factory.queue()
    add_items(app, queue.slug, 1)
    alice, bob = factory.user(), factory.user()
    item_id = claim(app, queue.slug, alice.id)
    with pytest.raises(Conflict, match="leased to another reviewer"):
        decide(app, item_id, bob.id, {"action": "approve"})


@pytest.mark.parametrize(
    "data, field",
    [
        ({"action": "maybe"}, "action"),
        ({"action": "override", "label": "reject"}, "reason_code"),
        ({"action": "override", "label": "nope", "reason_code": "wrong_label"}, "label"),
        ({"action": "approve", "comment": 5}, "comment"),
    ],
)
def test_invalid_decisions_name_the_field(app, factory, data, field):
    queue = factory.queue()
    add_items(app, queue.slug, 1)
    alice = factory.user()
    item_id = claim(app, queue.slug, alice.id)
    with pytest.raises(ValidationFailed) as error:
        decide(app, item_id, alice.id, data)
    assert field in error.value.fields


def test_racing_reviewers_decide_each_item_exactly_once(app, factory):
    """Eight reviewers claim and decide until the queue is empty; no item twice."""
    queue = factory.queue()
    add_items(app, queue.slug, 40)
    reviewers = [factory.user() for _ in range(8)]
    decided: list[int] = []
    errors: list[BaseException] = []

    def work(user_id):
        try:
            while (item_id := claim(app, queue.slug, user_id)) is not None:
                decide(app, item_id, user_id, {"action": "approve"})
                decided.append(item_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r.id,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(decided) == sorted(set(decided)) and len(decided) == 40
    with app.app_context():
        assert db_session().scalar(select(func.count()).select_from(Review)) == 40

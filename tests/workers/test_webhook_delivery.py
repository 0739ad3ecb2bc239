"""Decision webhooks end to end: a real receiver on 127.0.0.1, real RQ jobs, real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select, update

from models import AuditEvent, Item, QueueWebhook, User, WebhookEvent
from models.base import utcnow
from review.db import db_session
from review.domain.datasets import reviewer_pseudonym
from review.redis_conn import get_rq_queue
from review.sealed_secrets import SecretBox, is_sealed
from review.services import queues, review_actions, reviewing, webhooks
from review.services.errors import Conflict
from tests.conftest import csrf_from, login
from tests.fakes.webhook_receiver import SECRET, running_receiver
from tests.web.ui_helpers import htmx_headers, idempotency_key, reviewer_in, shown_item
from tests.workers.webhook_helpers import (
    FAST_RETRIES,
    add_decided_items,
    deliver_all,
    hooked_queue,
    outbox,
)
from workers.sweeper import sweep_if_leader
from workers.webhook_jobs import deliver_event, sweep_webhooks


@pytest.fixture
def receiver():
    yield from running_receiver()


def _queued_jobs(app) -> int:
    """Delivery jobs waiting in Redis, to run now or at a set time."""
    with app.app_context():
        rq_queue = get_rq_queue()
        return rq_queue.count + rq_queue.scheduled_job_registry.count


def test_an_auto_approval_is_delivered_signed_with_the_decision(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url)
    [item_id] = add_decided_items(app, queue.slug, 1)

    deliver_all(app)

    [event] = outbox(app)
    assert event.status == "delivered" and event.attempts == 1
    [delivery] = receiver.deliveries
    assert delivery.signature_ok
    assert delivery.event_id == event.event_id
    body = delivery.body
    assert body["id"] == event.event_id and body["type"] == "item.decided"
    assert body["queue"] == queue.slug
    assert (body["item_id"], body["external_id"]) == (item_id, "w-0")
    assert (body["final_label"], body["action"], body["decided_by"]) == (
        "approve",
        "auto_approved",
        "policy",
    )
    assert body["reviewer_id"] is None
    assert (body["ai_label"], body["ai_confidence"]) == ("approve", 0.99)
    assert body["policy_version"] == 2  # the version the test set, not the queue's first
    assert body["decided_at"] is not None
    assert [d.status_code for d in event.deliveries] == [200]


def test_a_tampered_body_fails_the_receivers_check(app, factory, receiver):
    """The receiver's own HMAC check does fail on a wrong secret (the check can fail)."""
    receiver.secret = "another-secret-entirely-0000"
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 1)
    deliver_all(app)
    assert [d.signature_ok for d in receiver.deliveries] == [False]


def test_no_event_exists_or_is_queued_before_the_decision_commits(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url, threshold=0.5)
    reviewer = factory.user("reviewer")
    factory.member(queue, reviewer)
    [item_id] = add_decided_items(app, queue.slug, 1, confidence=0.3)  # goes to review
    assert _queued_jobs(app) == 0
    with app.app_context():
        session = db_session()
        reviewing.decide(session, item_id, session.get(User, reviewer.id), {"action": "approve"})
        session.flush()
        assert _queued_jobs(app) == 0  # written in the transaction, not yet sent anywhere
        session.rollback()
    assert outbox(app) == [] and _queued_jobs(app) == 0

    with app.app_context():
        session = db_session()
        reviewing.decide(session, item_id, session.get(User, reviewer.id), {"action": "approve"})
        session.commit()
    assert len(outbox(app)) == 1 and _queued_jobs(app) == 1


def test_failures_are_retried_with_growing_pauses_then_delivered(app, factory, receiver):
    app.config.update(WEBHOOK_RETRY_INTERVALS=[30, 120])
    receiver.then(500, 503)
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 1)
    [event] = outbox(app)

    with app.app_context():
        before = utcnow()
        assert deliver_event(event.id) == "pending"
    [event] = outbox(app)
    assert before + timedelta(seconds=30) <= event.next_attempt_at
    assert event.next_attempt_at <= utcnow() + timedelta(seconds=30)
    assert event.last_status_code == 500
    with app.app_context():
        assert deliver_event(event.id) == "skipped"  # not due yet: nothing is sent

    _make_due(app, event.id)
    with app.app_context():
        before = utcnow()
        assert deliver_event(event.id) == "pending"
    [event] = outbox(app)
    assert event.next_attempt_at >= before + timedelta(seconds=120)  # the pause grew

    _make_due(app, event.id)
    with app.app_context():
        assert deliver_event(event.id) == "delivered"
    [event] = outbox(app)
    assert [d.status_code for d in event.deliveries] == [500, 503, 200]
    assert len(set(receiver.ids())) == 1  # one event, the same id on every attempt
    assert all(d.signature_ok for d in receiver.deliveries)


def _make_due(app, event_pk: int) -> None:
    with app.app_context():
        session = db_session()
        session.get(WebhookEvent, event_pk).next_attempt_at = utcnow() - timedelta(seconds=1)
        session.commit()


def test_an_endpoint_that_always_fails_ends_in_the_dead_letters_and_replay_delivers(
    app, factory, receiver, client
):
    app.config.update(FAST_RETRIES)
    receiver.default = 500
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 2)

    deliver_all(app)

    events = outbox(app)
    assert {e.status for e in events} == {"dead"}
    assert all(e.attempts == 4 for e in events)  # 3 retries after the first attempt
    assert len(receiver.deliveries) == 8

    admin = factory.user("admin")
    login(client, admin.email)
    page = client.get("/admin/webhooks/")
    assert page.status_code == 200
    for event in events:
        assert event.event_id in page.text
    assert "receiver says no" in page.text

    # A replay without the CSRF token is refused and changes nothing.
    refused = client.post(f"/admin/webhooks/events/{events[0].id}/replay")
    assert refused.status_code == 400
    assert {e.status for e in outbox(app)} == {"dead"}

    receiver.default = 200
    token = csrf_from(page.text)
    one = client.post(f"/admin/webhooks/events/{events[0].id}/replay", data={"csrf_token": token})
    assert one.status_code == 303
    deliver_all(app)
    assert [e.status for e in outbox(app)] == ["delivered", "dead"]

    every = client.post("/admin/webhooks/replay-dead", data={"csrf_token": token})
    assert every.status_code == 303
    deliver_all(app)
    assert [e.status for e in outbox(app)] == ["delivered", "delivered"]
    assert {d.event_id for d in receiver.accepted()} == {e.event_id for e in events}
    with app.app_context():
        replays = db_session().scalars(
            select(AuditEvent).where(AuditEvent.action == "webhook.replayed")
        )
        assert [r.details["count"] for r in replays] == [1, 1]


def test_only_admins_see_the_dead_letter_page(app, factory, client):
    owner = factory.user("policy_owner")
    login(client, owner.email)
    assert client.get("/admin/webhooks/").status_code == 403


def test_a_human_decision_is_held_through_the_undo_window(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url, threshold=0.5)
    reviewer = factory.user("reviewer")
    factory.member(queue, reviewer)
    [item_id] = add_decided_items(app, queue.slug, 1, confidence=0.3)
    with app.app_context():
        session = db_session()
        review = reviewing.decide(
            session,
            item_id,
            session.get(User, reviewer.id),
            {"action": "override", "label": "reject", "reason_code": "wrong_label"},
        )
        decided_at = review.decided_at
        session.commit()

    [event] = outbox(app)
    window = timedelta(seconds=review_actions.UNDO_SECONDS)
    assert event.next_attempt_at > decided_at + window
    with app.app_context():
        assert deliver_event(event.id) == "skipped"
    assert receiver.deliveries == []

    _make_due(app, event.id)  # the window has passed
    with app.app_context():
        assert deliver_event(event.id) == "delivered"
    [delivery] = receiver.deliveries
    assert delivery.body["decided_by"] == "reviewer"
    assert delivery.body["action"] == "overridden" and delivery.body["final_label"] == "reject"
    # A pseudonym, the same one dataset snapshots use; never the reviewer's email.
    assert delivery.body["reviewer_id"] == reviewer_pseudonym("test-secret", reviewer.id)
    assert reviewer.email not in str(delivery.body)
    assert delivery.body["policy_version"] == 2


def test_an_undone_decision_is_never_sent_and_its_redo_is(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url, threshold=0.5)
    reviewer = factory.user("reviewer")
    factory.member(queue, reviewer)
    [item_id] = add_decided_items(app, queue.slug, 1, confidence=0.3)
    with app.app_context():
        session = db_session()
        user = session.get(User, reviewer.id)
        reviewing.decide(session, item_id, user, {"action": "approve"})
        session.commit()
        review_actions.undo(session, item_id, user, lease_seconds=300)
        session.commit()
        reviewing.decide(
            session,
            item_id,
            user,
            {"action": "override", "label": "reject", "reason_code": "wrong_label"},
        )
        session.commit()

    undone, final = outbox(app)
    assert undone.status == "cancelled" and final.status == "pending"
    _make_due(app, undone.id)
    _make_due(app, final.id)
    with app.app_context():
        assert deliver_event(undone.id) == "skipped"
        assert deliver_event(final.id) == "delivered"
    assert [d.body["final_label"] for d in receiver.deliveries] == ["reject"]


def test_an_undo_is_refused_once_the_event_is_being_sent(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url, threshold=0.5)
    reviewer = factory.user("reviewer")
    factory.member(queue, reviewer)
    [item_id] = add_decided_items(app, queue.slug, 1, confidence=0.3)
    with app.app_context():
        session = db_session()
        user = session.get(User, reviewer.id)
        reviewing.decide(session, item_id, user, {"action": "approve"})
        session.commit()
        # As if a worker had just claimed the event (clocks apart, a slow undo).
        event = session.scalar(select(WebhookEvent))
        event.status = "sending"
        session.commit()
        with pytest.raises(Conflict, match="already been sent"):
            review_actions.undo(session, item_id, user, lease_seconds=300)
        session.rollback()
        assert session.get(Item, item_id).status == "decided"


def test_the_sweeper_finds_events_whose_job_was_lost(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 3)
    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # Redis restarted: the jobs are gone
    deliver_all(app)
    assert receiver.deliveries == []

    with app.app_context():
        session = db_session()
        assert sweep_webhooks(session, get_rq_queue(), older_than_seconds=60) == 0  # too fresh
        for event in session.scalars(select(WebhookEvent)):
            event.next_attempt_at = utcnow() - timedelta(seconds=120)
        session.commit()
        assert sweep_webhooks(session, get_rq_queue(), older_than_seconds=60) == 3
        assert sweep_webhooks(session, get_rq_queue(), older_than_seconds=60) == 0  # once
    deliver_all(app)
    assert {e.status for e in outbox(app)} == {"delivered"}
    assert len(receiver.accepted()) == 3


def test_a_queue_without_a_webhook_writes_no_events(app, factory):
    queue = factory.queue(recommender={"kind": "none"})
    with app.app_context():
        session = db_session()
        owner = factory.user("policy_owner")
        queues.create_policy_version(
            session,
            queues.get_queue(session, queue.slug),
            {"default_threshold": 0.9, "note": "no webhook"},
            session.get(User, owner.id),
        )
        session.commit()
    add_decided_items(app, queue.slug, 2)
    with app.app_context():
        assert db_session().scalar(select(func.count()).select_from(WebhookEvent)) == 0
        approved = select(func.count()).select_from(Item).where(Item.status == "auto_approved")
        assert db_session().scalar(approved) == 2


def _stored_secret(app, queue_id: int) -> str:
    with app.app_context():
        return db_session().scalar(
            select(QueueWebhook.secret).where(QueueWebhook.queue_id == queue_id)
        )


def test_a_secret_stored_before_sealing_still_signs_and_is_sealed_on_first_use(
    app, factory, receiver
):
    queue = hooked_queue(app, factory, receiver.url)
    with app.app_context():  # as an older release stored it
        session = db_session()
        session.execute(
            update(QueueWebhook).where(QueueWebhook.queue_id == queue.id).values(secret=SECRET)
        )
        session.commit()
    add_decided_items(app, queue.slug, 1)

    deliver_all(app)

    assert [d.signature_ok for d in receiver.deliveries] == [True]
    stored = _stored_secret(app, queue.id)
    assert is_sealed(stored) and SECRET not in stored


def test_after_a_key_rotation_the_fallback_key_still_opens_the_secret(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 1)
    app.config.update(SECRET_KEY="rotated-key", SECRET_KEY_FALLBACKS=["test-secret"])

    deliver_all(app)

    assert [d.signature_ok for d in receiver.deliveries] == [True]


def test_a_secret_no_key_opens_is_never_sent_unsigned_and_sends_once_set_again(
    app, factory, receiver
):
    queue = hooked_queue(app, factory, receiver.url)
    add_decided_items(app, queue.slug, 1)
    app.config.update(SECRET_KEY="a-key-that-never-sealed-it")

    deliver_all(app)

    assert receiver.deliveries == []
    [event] = outbox(app)
    assert event.status == "pending"
    assert "not sent: the webhook secret is sealed under a SECRET_KEY" in event.last_error
    assert [(d.status_code, d.error) for d in event.deliveries] == [(None, event.last_error)]

    with app.app_context():  # an admin sets it again; the retry's time comes
        session = db_session()
        row = queues.get_queue(session, queue.slug)
        owner = session.scalar(select(User).where(User.role == "policy_owner"))
        body = {"url": receiver.url, "secret": SECRET}
        webhooks.set_webhook(session, row, body, owner, SecretBox.from_config(app.config))
        session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event.id).values(next_attempt_at=utcnow())
        )
        session.commit()
        assert deliver_event(event.id) == "delivered"

    assert [d.signature_ok for d in receiver.deliveries] == [True]


def test_the_first_sweep_after_an_upgrade_seals_secrets_stored_in_the_clear(app, factory):
    """A queue whose webhook has had no delivery since would otherwise keep it in the clear."""
    quiet = hooked_queue(app, factory, "https://hooks.example.com/quiet")
    with app.app_context():  # as an older release stored it
        session = db_session()
        session.execute(
            update(QueueWebhook).where(QueueWebhook.queue_id == quiet.id).values(secret=SECRET)
        )
        session.commit()

    assert sweep_if_leader(app) is not None

    stored = _stored_secret(app, quiet.id)
    assert is_sealed(stored) and SECRET not in stored
    assert SecretBox.from_config(app.config).open(stored) == SECRET


@pytest.mark.parametrize("hooked", [True, False])
def test_decisions_on_the_review_page_write_events_only_for_a_hooked_queue(
    app, client, factory, hooked
):
    # The review page learns whether the queue has a webhook from the query that checks
    # membership (members.member_queue_item), not from a query of its own.
    if hooked:
        queue = hooked_queue(app, factory, "https://hooks.example.com/d", threshold=0.5)
    else:
        queue = factory.queue(recommender={"kind": "none"})
        with app.app_context():
            session = db_session()
            owner = session.get(User, factory.user("policy_owner").id)
            row = queues.get_queue(session, queue.slug)
            policy = {"default_threshold": 0.5, "note": "no webhook"}
            queues.create_policy_version(session, row, policy, owner)
            session.commit()
    add_decided_items(app, queue.slug, 3, confidence=0.3)  # below the threshold: queued
    login(client, reviewer_in(factory, queue).email)
    page = client.get(f"/queues/{queue.slug}/review")
    html, token = page.text, csrf_from(page.text)
    decided = []
    for _ in range(2):
        item_id, external_id = shown_item(html)
        key = idempotency_key(html)
        answer = client.post(
            f"/queues/{queue.slug}/items/{item_id}/decision",
            data={"action": "approve", "idempotency_key": key},
            headers=htmx_headers(token),
        )
        assert f"Saved {external_id}" in answer.text
        decided.append(item_id)
        html = answer.text
    events = outbox(app)
    if hooked:
        assert [event.item_id for event in events] == decided
        assert all(event.facts["decided_by"] == "reviewer" for event in events)
    else:
        assert events == []

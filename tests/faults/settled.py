"""What must hold after every fault: no item lost or duplicated, none routed or decided
twice, and every final decision delivered to the webhook."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from models import Item, Review, RoutingRecord, User, WebhookEvent
from review.db import db_session
from review.services import reviewing
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.workers.webhook_helpers import outbox

FINAL = ("auto_approved", "decided")


def none_pending(app, queue_id: int) -> bool:
    with app.app_context():
        return not db_session().scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.queue_id == queue_id, Item.status == "pending")
        )


def decide_waiting(app, queue_id: int, reviewer: User) -> int:
    """The reviewer approves (or, without AI advice, labels) every item waiting in the queue."""
    with app.app_context():
        session = db_session()
        user = session.get(User, reviewer.id)
        waiting = session.scalars(
            select(Item).where(Item.queue_id == queue_id, Item.status == "needs_review")
        ).all()
        for item in waiting:
            if item.recommendation is not None and item.recommendation.label in item.queue.labels:
                data = {"action": "approve"}
            else:
                label, reason = item.queue.labels[0], item.queue.reason_codes[0]
                data = {"action": "override", "label": label, "reason_code": reason}
            reviewing.decide(session, item.id, user, data)
        session.commit()
        return len(waiting)


def all_delivered(app) -> bool:
    return all(e.status in ("delivered", "cancelled") for e in outbox(app))


def assert_settled(app, queue_id: int, external_ids: list[str], receiver: WebhookReceiver):
    """Every accepted external id is one routed item; every final decision is one
    delivered webhook event that the receiver accepted."""
    with app.app_context():
        session = db_session()
        items = session.scalars(select(Item).where(Item.queue_id == queue_id)).all()
        stored = Counter(i.external_id for i in items)
        assert set(stored) == set(external_ids), "an accepted item is missing (or extra)"
        assert set(stored.values()) == {1}, "an external id was stored twice"
        assert all(i.status != "pending" for i in items), "an item was never routed"
        routings = Counter(
            session.scalars(
                select(RoutingRecord.item_id).where(
                    RoutingRecord.item_id.in_([i.id for i in items])
                )
            )
        )
        assert all(routings[i.id] == 1 for i in items), "an item was routed twice"
        reviews = Counter(session.scalars(select(Review.item_id)))
        assert all(count == 1 for count in reviews.values()), "an item was decided twice"
        final = {i.id for i in items if i.status in FINAL}
        events = session.scalars(
            select(WebhookEvent).where(WebhookEvent.status != "cancelled")
        ).all()
        per_item = Counter(e.item_id for e in events)
        assert set(per_item) == final and set(per_item.values()) <= {1}, (
            "a final decision has no webhook event, or more than one"
        )
        assert {e.status for e in events} <= {"delivered"}, "an event was not delivered"
        assert {d.event_id for d in receiver.accepted()} == {e.event_id for e in events}
        assert all(d.signature_ok for d in receiver.deliveries)

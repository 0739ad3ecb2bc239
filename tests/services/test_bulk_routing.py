"""Routing many items to review in bulk (imports): what each recommendation keeps."""

from __future__ import annotations

from sqlalchemy import select

from models import Item, Recommendation
from review.db import db_session
from review.services import queues, routing
from review.services.routing import RecommendationInput


def test_evidence_is_stored_for_those_that_bring_it_and_null_for_the_others(app, factory):
    queue = factory.queue("support")
    with app.app_context():
        session = db_session()
        queue_row = queues.get_queue(session, "support")
        policy = queues.current_policy(session, queue_row)
        items = [
            Item(queue_id=queue.id, external_id=f"i{n}", payload={"text": "t"}, payload_sha256="0")
            for n in range(3)
        ]
        session.add_all(items)
        session.flush()
        ids = [item.id for item in items]
        session.expunge_all()
        advice = [
            RecommendationInput("external", "m", "approve", 0.3, evidence=("it works now",)),
            RecommendationInput("external", "m", "reject", 0.4),
            None,
        ]
        routes = [
            routing.ReviewRoute(item_id, rec, routing.plan_route(policy, rec))
            for item_id, rec in zip(ids, advice, strict=True)
        ]
        routing.route_for_review_in_bulk(session, policy, routes)
        session.commit()

        rows = session.execute(select(Recommendation.item_id, Recommendation.evidence)).all()
        stored = {item_id: evidence for item_id, evidence in rows}
        without = session.scalar(
            select(Recommendation.item_id).where(Recommendation.evidence.is_(None))
        )
        statuses = set(session.scalars(select(Item.status)))
    assert stored == {ids[0]: ["it works now"], ids[1]: None}
    assert without == ids[1]  # SQL NULL, as for any recommendation without quotes
    assert statuses == {"needs_review"}

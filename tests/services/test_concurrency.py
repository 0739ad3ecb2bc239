"""Sixteen reviewers race through 2,000 items on PostgreSQL: each item is decided once."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from models import Item, Review, User
from review.db import db_session
from review.services import ingest, queues, reviewing
from review.services.errors import Conflict

ITEMS = 2000
REVIEWERS = 16


def add_many(app, slug: str, count: int) -> None:
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        for start in range(0, count, ingest.MAX_BATCH):
            body = {
                "items": [
                    {
                        "external_id": f"race-{i}",
                        "payload": {"text": f"ticket {i}"},
                        "priority": i % 3,
                        "recommendation": {"label": "approve", "confidence": 0.4, "model": "m"},
                    }
                    for i in range(start, min(count, start + ingest.MAX_BATCH))
                ]
            }
            parsed, _ = ingest.parse_ingest_body(body, queue)
            ingest.ingest(session, queue, parsed)
        session.commit()


@pytest.mark.slow
def test_sixteen_reviewers_decide_two_thousand_items_exactly_once(app, factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the race is meaningful on PostgreSQL (SQLite has a single writer)")
    queue = factory.queue("race")
    add_many(app, "race", ITEMS)
    reviewers = [factory.user().id for _ in range(REVIEWERS)]
    decided: list[tuple[int, int]] = []
    refused: list[int] = []  # list.append is atomic across threads; += on a Counter is not
    errors: list[BaseException] = []
    start = threading.Barrier(REVIEWERS)

    def work(user_id: int) -> None:
        try:
            start.wait()
            with app.app_context():
                session = db_session()
                user = session.get(User, user_id)
                queue_row = queues.get_queue(session, queue.slug)
                while True:
                    item = reviewing.claim_next(session, queue_row, user, 300)
                    session.commit()
                    if item is None:
                        return
                    key = uuid.uuid4().hex
                    for _attempt in range(2):  # every submit is sent twice (a double click)
                        try:
                            reviewing.decide(
                                session,
                                item.id,
                                user,
                                {"action": "approve"},
                                idempotency_key=key,
                                require_lease=True,
                            )
                            session.commit()
                            decided.append((item.id, user_id))
                        except Conflict:
                            session.rollback()
                            refused.append(item.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(user_id,)) for user_id in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert sorted(refused) == sorted(item_id for item_id, _ in decided)  # each repeat refused
    assert len(decided) == ITEMS == len({item_id for item_id, _ in decided})
    with app.app_context():
        session = db_session()
        assert session.scalar(select(func.count()).select_from(Review)) == ITEMS
        assert session.scalar(select(func.count(Item.id)).where(Item.status != "decided")) == 0
        by_item = dict(session.execute(select(Review.item_id, Review.reviewer_id)).all())
    assert by_item == dict(decided)  # the reviewer who held the lease is the one recorded
    assert len({user_id for _, user_id in decided}) > 1  # they really did work in parallel

"""200 concurrent ingest requests whose external ids overlap: every item is stored once,
decided once, and its decision delivered to the webhook."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from models import Item, RoutingRecord
from review.db import db_session
from tests.fakes.webhook_receiver import running_receiver
from tests.workers.helpers import run_worker
from tests.workers.webhook_helpers import hooked_queue, outbox

REQUESTS = 200
DISTINCT_IDS = 40


@pytest.fixture
def receiver():
    yield from running_receiver()


def _item(n: int) -> dict:
    """The same external id always carries the same payload and recommendation (a retry)."""
    return {
        "external_id": f"dup-{n}",
        "payload": {"text": f"ticket {n}"},
        "recommendation": {
            "label": "approve",
            "confidence": 0.99 if n % 2 else 0.3,  # odd ids are auto-approved
            "model": "upstream-v2",
        },
    }


@pytest.mark.slow
def test_concurrent_ingests_with_duplicate_external_ids(app, factory, receiver):
    queue = hooked_queue(app, factory, receiver.url)
    owner = factory.user("policy_owner")
    factory.member(queue, owner)
    headers = {"Authorization": f"Bearer {factory.token(owner)}"}
    start = threading.Barrier(REQUESTS)
    answers: list = [None] * REQUESTS

    def post(i: int) -> None:
        ids = sorted({i % DISTINCT_IDS, (i + 7) % DISTINCT_IDS, (i + 13) % DISTINCT_IDS})
        body = {"items": [_item(n) for n in ids]}
        client = app.test_client()
        start.wait()
        response = client.post(f"/api/v1/queues/{queue.slug}/items", json=body, headers=headers)
        answers[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=post, args=(i,)) for i in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert {status for status, _ in answers} <= {200, 202}, [a for a in answers if a[0] >= 300]
    # Every answer names, for each external id, the one item stored for it.
    ids_by_external = {}
    for _, body in answers:
        for entry in body["items"]:
            ids_by_external.setdefault(entry["external_id"], set()).add(entry["id"])
    assert len(ids_by_external) == DISTINCT_IDS
    assert all(len(ids) == 1 for ids in ids_by_external.values())

    with app.app_context():
        session = db_session()
        assert session.scalar(select(func.count()).select_from(Item)) == DISTINCT_IDS
        routed = session.execute(
            select(RoutingRecord.item_id, func.count()).group_by(RoutingRecord.item_id)
        ).all()
        assert len(routed) == DISTINCT_IDS and {count for _, count in routed} == {1}
        auto = set(session.scalars(select(Item.id).where(Item.status == "auto_approved")))
        assert len(auto) == DISTINCT_IDS // 2

    run_worker(app)  # deliver the webhooks the ingest transactions enqueued
    events = outbox(app)
    assert sorted(e.item_id for e in events) == sorted(auto)  # one event per decision
    assert {e.status for e in events} == {"delivered"}
    assert sorted(d.event_id for d in receiver.accepted()) == sorted(e.event_id for e in events)

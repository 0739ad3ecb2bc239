"""Redis restarted while items are being ingested and reviewed over the API: the API keeps
accepting items and decisions, and afterwards nothing is lost, nothing is doubled, and
every final decision reaches the webhook."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import select

from models import Item
from review.db import db_session
from review.embedded_redis import EmbeddedRedis
from tests.fakes.webhook_receiver import running_receiver
from tests.faults.conftest import kill_group, wait_for, worker_env
from tests.faults.settled import all_delivered, assert_settled, decide_waiting, none_pending
from tests.workers.webhook_helpers import hooked_queue


@pytest.fixture
def receiver():
    yield from running_receiver()


@pytest.fixture
def own_redis():
    """A redis-server of this test's own: restarting it disturbs nobody else."""
    server = EmbeddedRedis().start()
    yield server
    server.stop()


def _batch(prefix: str) -> dict:
    """Six items for the AI (auto-approved once it answers) and four that bring a weak
    recommendation of their own (routed to people at once)."""
    items = [
        {"external_id": f"{prefix}-ai-{n}", "payload": {"body": f"refund {n}"}} for n in range(6)
    ]
    items += [
        {
            "external_id": f"{prefix}-weak-{n}",
            "payload": {"body": f"unclear {n}"},
            "recommendation": {"label": "spam", "confidence": 0.2, "model": "upstream"},
        }
        for n in range(4)
    ]
    return {"items": items}


@pytest.mark.slow
def test_a_redis_restart_during_ingest_and_review_loses_nothing(
    app, factory, fake_anthropic, workers, own_redis, receiver, make_app
):
    queue = hooked_queue(
        app,
        factory,
        receiver.url,
        labels=["refund", "bug_report", "spam"],
        recommender={"kind": "claude"},
    )
    owner, reviewer = factory.user("policy_owner"), factory.user("reviewer")
    factory.member(queue, owner, reviewer)
    ingest_headers = {"Authorization": f"Bearer {factory.token(owner)}"}
    review_headers = {"Authorization": f"Bearer {factory.token(reviewer)}"}
    # The web app on the Redis that will restart (the `app` fixture's stays untouched).
    web = make_app(dict(app.config) | {"REDIS_URL": own_redis.url}).test_client()
    env = worker_env(app, fake_anthropic, own_redis.url) | {
        "WEBHOOK_TIMEOUT_SECONDS": "5",
        "WEBHOOK_RETRY_INTERVALS": "1,1,1",
    }
    worker = workers(env)
    wait_for(
        lambda: Redis.from_url(own_redis.url).keys("rq:worker:*") != [],
        60,
        "the worker to register",
    )

    def ingest(prefix: str) -> None:
        response = web.post(
            f"/api/v1/queues/{queue.slug}/items", json=_batch(prefix), headers=ingest_headers
        )
        assert response.status_code == 202, response.get_json()

    ingest("up")
    wait_for(lambda: none_pending(app, queue.id), 180, "the first batch to be routed")

    # Jobs queued while no worker runs are lost with Redis's memory... (The worker is
    # killed rather than paused: a paused process may hold a SQLite lock all along.)
    kill_group(worker)
    ingest("queued")
    own_redis.stop()
    # ...and while Redis is down the API still takes items and reviewers' decisions.
    ingest("down")
    with app.app_context():
        waiting = (
            db_session()
            .scalars(
                select(Item.id).where(Item.queue_id == queue.id, Item.status == "needs_review")
            )
            .all()
        )
    assert waiting
    for item_id in waiting:
        response = web.post(
            f"/api/v1/items/{item_id}/decision", json={"action": "approve"}, headers=review_headers
        )
        assert response.status_code == 200, response.get_json()
    own_redis.start()
    workers(env)

    # Generous: the sweeper runs every second, but a loaded 2-core CI box is slow.
    wait_for(lambda: none_pending(app, queue.id), 240, "every item to be routed")
    decide_waiting(app, queue.id, reviewer)
    wait_for(lambda: all_delivered(app), 240, "every decision to reach the webhook")
    external_ids = [
        item["external_id"]
        for prefix in ("up", "queued", "down")
        for item in _batch(prefix)["items"]
    ]
    assert_settled(app, queue.id, external_ids, receiver)

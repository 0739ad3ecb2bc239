"""PostgreSQL connections cut (pg_terminate_backend) while workers route items, people
decide and webhooks go out: pools reconnect (pool_pre_ping), failed jobs are redone, and
nothing is lost, doubled or left undelivered."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, select, text

from models import Item
from review.db import db_session
from tests.fakes.webhook_receiver import running_receiver
from tests.faults.conftest import wait_for, worker_env
from tests.faults.settled import all_delivered, assert_settled, decide_waiting, none_pending
from tests.workers.webhook_helpers import hooked_queue

TERMINATE_OTHERS = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
def receiver():
    yield from running_receiver()


def _cut_connections(url: str, times: int = 3) -> int:
    """Terminate every other session on the database, a few times a second apart, so jobs,
    the sweeper and the web app's pool are each likely caught mid-work."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    cut = 0
    try:
        for _ in range(times):
            with engine.connect() as conn:
                cut += conn.execute(TERMINATE_OTHERS).scalar_one()
            time.sleep(1)
    finally:
        engine.dispose()
    return cut


def _batch(prefix: str, count: int) -> dict:
    return {
        "items": [
            {"external_id": f"{prefix}-{n}", "payload": {"body": f"refund {n}"}}
            for n in range(count)
        ]
    }


@pytest.mark.slow
def test_cut_database_connections_lose_nothing(
    app, client, factory, fake_anthropic, workers, receiver, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    fake_anthropic.slow_seconds = 2
    fake_anthropic.then(*["slow"] * 6)  # work is under way when the connections go
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
    workers(
        worker_env(app, fake_anthropic)
        | {"WEBHOOK_TIMEOUT_SECONDS": "5", "WEBHOOK_RETRY_INTERVALS": "1,1,1"}
    )

    def ingest(prefix: str, count: int) -> None:
        response = client.post(
            f"/api/v1/queues/{queue.slug}/items", json=_batch(prefix, count), headers=ingest_headers
        )
        assert response.status_code == 202, response.get_json()

    ingest("first", 12)
    wait_for(lambda: len(fake_anthropic.message_requests()) > 0, 180, "the AI calls to start")
    assert _cut_connections(database_url) > 0

    ingest("after-cut", 6)  # the web app's pool lost its connections: pre-ping replaces them
    wait_for(lambda: none_pending(app, queue.id), 240, "every item to be routed")

    fake_anthropic.answer = {"label": "spam", "confidence": 0.5}  # these need people
    ingest("for-people", 4)
    wait_for(lambda: none_pending(app, queue.id), 240, "the last items to be routed")

    # The connections go again; a reviewer's decision over the API still goes through.
    _cut_connections(database_url, times=2)
    with app.app_context():
        item_id = db_session().scalar(
            select(Item.id).where(Item.queue_id == queue.id, Item.status == "needs_review")
        )
    assert item_id is not None
    response = client.post(
        f"/api/v1/items/{item_id}/decision", json={"action": "approve"}, headers=review_headers
    )
    assert response.status_code == 200, response.get_json()
    decide_waiting(app, queue.id, reviewer)

    wait_for(lambda: all_delivered(app), 240, "every decision to reach the webhook")
    external_ids = [
        item["external_id"]
        for prefix, count in (("first", 12), ("after-cut", 6), ("for-people", 4))
        for item in _batch(prefix, count)["items"]
    ]
    assert_settled(app, queue.id, external_ids, receiver)

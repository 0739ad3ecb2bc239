"""Redis restarted while items are pending: every item still ends routed."""

from __future__ import annotations

import pytest
from redis import Redis

from review.embedded_redis import EmbeddedRedis
from review.redis_conn import get_rq_queue
from review.services import pipeline
from tests.faults.conftest import wait_for, worker_env
from tests.workers.claude_helpers import claude_queue
from tests.workers.helpers import add_items, items_by_id


@pytest.fixture
def own_redis():
    """A redis-server of this test's own: restarting it disturbs nobody else."""
    server = EmbeddedRedis().start()
    yield server
    server.stop()


@pytest.mark.slow
def test_items_pending_across_a_redis_restart_are_all_routed(
    app, factory, fake_anthropic, workers, own_redis
):
    queue = claude_queue(factory)
    app.config["REDIS_URL"] = own_redis.url

    # Jobs queued before any worker takes them are lost with Redis's memory. (No worker
    # runs yet: pausing one instead could freeze it inside a SQLite write and lock the
    # database for the rest of the test.)
    queued = add_items(
        app,
        queue.slug,
        [{"body": f"refund {n}"} for n in range(10)],
        enqueue=False,
        prefix="queued",
    )
    with app.app_context():
        rq_queue = get_rq_queue().__class__(
            app.config["RQ_QUEUE_NAME"], connection=Redis.from_url(own_redis.url)
        )
        assert pipeline.enqueue_recommendations(rq_queue, queued)
    own_redis.stop()
    # ...and items ingested while Redis is down were never queued at all.
    unqueued = add_items(
        app, queue.slug, [{"body": f"bug {n}"} for n in range(10)], enqueue=False, prefix="down"
    )
    own_redis.start()
    assert Redis.from_url(own_redis.url).keys("rq:*") == [], "the restart should lose the jobs"
    workers(worker_env(app, fake_anthropic, own_redis.url))

    ids = queued + unqueued
    wait_for(
        lambda: all(i.status != "pending" for i in items_by_id(app, ids).values()),
        # Generous: the sweeper runs every second, but a loaded 2-core CI box is slow.
        240,
        "every item to be routed",
    )
    items = items_by_id(app, ids)
    assert {i.ai_status for i in items.values()} == {"ok"}
    assert all(len(i.routings) == 1 for i in items.values())

"""The sweeper: items left pending are re-enqueued, by one host at a time, come what may."""

from __future__ import annotations

import logging
import threading
import time

from review.redis_conn import get_rq_queue
from tests.workers.helpers import add_items, items_by_id, run_worker, ticket
from workers.sweeper import run_sweeper, sweep_if_leader, sweep_once


def test_items_left_pending_when_redis_was_down_are_swept_and_routed(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", n) for n in range(3)], enqueue=False)
    run_worker(app)
    assert {i.status for i in items_by_id(app, ids).values()} == {"pending"}

    with app.app_context():
        from review.db import db_session

        session = db_session()
        assert sweep_once(session, get_rq_queue(), older_than_seconds=3600) == 0  # too recent
        assert sweep_once(session, get_rq_queue(), older_than_seconds=0) == 3
        # A swept item is not swept again until another full cutoff has passed.
        assert sweep_once(session, get_rq_queue(), older_than_seconds=60) == 0
    run_worker(app)

    items = items_by_id(app, ids).values()
    assert {(i.status, i.ai_status) for i in items} == {("needs_review", "none")}


def test_only_one_of_two_sweepers_sweeps_in_an_interval(app, factory, make_app):
    queue = factory.queue()
    add_items(app, queue.slug, [ticket("reject", 1), ticket("reject", 2)], enqueue=False)
    app.config["SWEEP_PENDING_AFTER_SECONDS"] = 0
    other_host = make_app(dict(app.config))

    results = [sweep_if_leader(app), sweep_if_leader(other_host)]

    assert sorted(results, key=str) == [2, None]
    with app.app_context():
        assert get_rq_queue().count == 1  # one recommend job holding both items


def test_sweeper_survives_an_unreachable_redis(app, caplog, make_app):
    config = dict(app.config, REDIS_URL="redis://127.0.0.1:1/0", SWEEP_INTERVAL_SECONDS=0.05)
    broken = make_app(config)
    stop = threading.Event()
    thread = threading.Thread(target=run_sweeper, args=(broken, stop), daemon=True)

    with caplog.at_level(logging.ERROR, logger="workers.sweeper"):
        thread.start()
        deadline = time.monotonic() + 10
        while len([r for r in caplog.records if "sweep failed" in r.message]) < 3:
            assert time.monotonic() < deadline, "the sweeper did not keep retrying"
            time.sleep(0.05)
        assert thread.is_alive()
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()

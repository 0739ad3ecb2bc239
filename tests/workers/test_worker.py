"""The worker itself: the CLI command, the forking worker, job-stamped logs."""

from __future__ import annotations

import logging

from review.redis_conn import get_rq_queue
from review.services import pipeline
from tests.workers.helpers import add_items, items_by_id, ticket
from workers.logs import JobIdFilter
from workers.worker import create_worker


def test_worker_command_routes_pending_items(app, factory, runner, monkeypatch):
    monkeypatch.setattr("workers.cli.configure_worker_logging", lambda: None)
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", 1), ticket("escalate", 2)])

    result = runner.invoke(args=["worker", "--burst", "--simple", "--no-sweeper"])

    assert result.exit_code == 0, result.output
    assert {i.status for i in items_by_id(app, ids).values()} == {"needs_review"}


def test_forking_worker_routes_items_in_a_child_process(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("reject", n) for n in range(3)])
    with app.app_context():
        # The parent holds pooled connections; the child must not reuse them.
        app.extensions["db"].engine.connect().close()
        create_worker(app).work(burst=True)
        assert get_rq_queue().failed_job_registry.count == 0

    assert {i.status for i in items_by_id(app, ids).values()} == {"needs_review"}


def test_job_logs_carry_the_job_id(app, factory, caplog):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", 1)], enqueue=False)
    with app.app_context():
        job = get_rq_queue().enqueue(pipeline.RECOMMEND_JOB, ids)
        caplog.handler.addFilter(JobIdFilter())
        with caplog.at_level(logging.INFO, logger="workers.jobs"):
            create_worker(app, simple=True).work(burst=True)

    stamped = [r for r in caplog.records if r.name == "workers.jobs"]
    assert stamped and all(r.job_id == job.id for r in stamped)

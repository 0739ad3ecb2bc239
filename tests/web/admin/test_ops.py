"""The admin operations page: workers, backlog, failed jobs with requeue, dead letters."""

from __future__ import annotations

import pytest
from rq import Worker
from sqlalchemy import select

from models import AuditEvent
from review.db import db_session
from review.redis_conn import get_rq_queue
from tests.conftest import csrf_from, login
from workers.worker import create_worker


@pytest.fixture
def failed_job(app):
    """A job that failed in a real worker run (it names a function that does not exist)."""
    with app.app_context():
        job = get_rq_queue().enqueue("workers.jobs.no_such_job", 42, description="broken job")
        create_worker(app, simple=True).work(burst=True)
        assert job.id in get_rq_queue().failed_job_registry
    return job


def test_only_admins_see_the_page(client, factory):
    assert client.get("/admin/ops").status_code == 302  # to the login page
    reviewer = factory.user("reviewer")
    login(client, reviewer.email)
    assert client.get("/admin/ops").status_code == 403


def test_page_lists_workers_with_heartbeats_and_the_backlog(app, client, admin, factory):
    with app.app_context():
        queue = get_rq_queue()
        worker = Worker([queue], connection=queue.connection, name="ops-worker")
        worker.register_birth()
        worker.heartbeat()
    try:
        page = client.get("/admin/ops")
    finally:
        worker.register_death()
    assert page.status_code == 200
    assert 'data-worker="ops-worker"' in page.text
    assert "s ago" in page.text
    assert 'id="backlog"' in page.text
    assert 'id="no-failed-jobs"' in page.text


def test_page_says_when_no_worker_runs(client, admin):
    page = client.get("/admin/ops")
    assert 'id="no-workers"' in page.text


def test_failed_job_is_listed_and_requeued_with_an_audit_event(
    app, client, admin, csrf, failed_job
):
    page = client.get("/admin/ops")
    assert f'data-job="{failed_job.id}"' in page.text
    assert "broken job" in page.text
    assert "no_such_job" in page.text  # the error's last line

    response = client.post(
        f"/admin/ops/failed/{failed_job.id}/requeue", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 303
    with app.app_context():
        rq_queue = get_rq_queue()
        assert failed_job.id not in rq_queue.failed_job_registry
        assert failed_job.id in rq_queue.get_job_ids()
        event = db_session().scalar(select(AuditEvent).where(AuditEvent.action == "job.requeued"))
        assert event is not None and event.details["job_id"] == failed_job.id
        assert event.actor_user_id == admin.id

    again = client.post(
        f"/admin/ops/failed/{failed_job.id}/requeue",
        data={"csrf_token": csrf},
        follow_redirects=True,
    )
    assert "is not among the failed jobs" in again.text


def test_requeue_without_csrf_is_refused(app, client, admin, failed_job):
    response = client.post(f"/admin/ops/failed/{failed_job.id}/requeue")
    assert response.status_code == 400
    with app.app_context():
        assert failed_job.id in get_rq_queue().failed_job_registry

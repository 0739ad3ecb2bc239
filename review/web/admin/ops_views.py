"""The admin operations page: workers and their heartbeats, the job backlog, failed jobs
(with requeue), items waiting per queue, and the way to the webhook dead letters."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from redis.exceptions import RedisError
from werkzeug import Response

from models.base import utcnow
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import background_jobs, metrics
from review.services.errors import NotFound
from review.web.admin import bp
from review.web.admin.common import acting_user
from review.web.security import roles_required

# The dead-letter page of the decision webhooks, by the endpoint names it may have.
DEAD_LETTER_ENDPOINTS = ("admin.webhook_dead_letters", "admin.webhooks")


def _dead_letters_url() -> str | None:
    for endpoint in DEAD_LETTER_ENDPOINTS:
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return None


@bp.get("/ops")
@roles_required("admin")
def ops() -> str:
    session = db_session()
    now = utcnow()
    rq_queue = get_rq_queue()
    redis_error = None
    workers, backlog, failed = [], None, []
    try:
        workers = background_jobs.workers(rq_queue, now)
        backlog = background_jobs.backlog(rq_queue, now)
        failed = background_jobs.failed_jobs(rq_queue)
    except (RedisError, OSError):
        redis_error = "Redis cannot be reached: workers and jobs cannot be shown."
    return render_template(
        "admin/ops.html",
        workers=workers,
        backlog=backlog,
        failed=failed,
        redis_error=redis_error,
        waiting=metrics.waiting_items(session, now),
        dead_letters=metrics.dead_webhook_events(session),
        dead_letters_url=_dead_letters_url(),
        rq_queue_name=rq_queue.name,
    )


@bp.post("/ops/failed/<job_id>/requeue")
@roles_required("admin")
def requeue_job(job_id: str) -> Response:
    """Run a failed job again (jobs are idempotent); audited as job.requeued."""
    session = db_session()
    try:
        job = background_jobs.requeue_failed(session, get_rq_queue(), job_id, acting_user())
    except NotFound as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".ops"), 303)
    except (RedisError, OSError):
        session.rollback()
        flash("Redis cannot be reached; the job was not requeued.", "error")
        return redirect(url_for(".ops"), 303)
    session.commit()
    flash(f"Requeued {job.description or job.id}.", "success")
    return redirect(url_for(".ops"), 303)

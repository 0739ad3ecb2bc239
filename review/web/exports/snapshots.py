"""ML pages for dataset snapshots: a queue's snapshots, starting one, watching it build,
reading its datasheet and evaluation, downloading it."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block
from werkzeug import Response

from app import htmx
from models import DatasetSnapshot, Queue, User
from models.base import utcnow
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import datasets, model_versions, queues
from review.services.dataset_rows import SCOPES
from review.services.errors import NotFound, ServiceError
from review.web.exports import bp
from review.web.exports.downloads import send_target
from review.web.exports.forms import FIELD_FOR_ERROR, SnapshotForm
from review.web.htmx_response import make_response
from review.web.security import logged_in_user, roles_required
from review.web.service_calls import or_flash_back_to

# The element that shows a building snapshot's status; htmx polls it while the job runs.
STATUS_TARGET = "snapshot-status"


def _user() -> User:
    return logged_in_user()


def _queue_or_404(slug: str) -> Queue:
    try:
        return queues.get_queue(db_session(), slug)
    except NotFound:
        abort(404)


def _snapshot_or_404(snapshot_id: int) -> DatasetSnapshot:
    try:
        return datasets.get_snapshot(db_session(), snapshot_id)
    except NotFound:
        abort(404)


def _render_queue_page(
    queue: Queue, form: SnapshotForm, errors: dict[str, str], status: int = 200
) -> Response:
    session = db_session()
    body = render_template(
        "exports/datasets.html",
        queue=queue,
        form=form,
        errors=errors,
        scopes=SCOPES,
        snapshots=datasets.list_snapshots(session, queue),
        may_name=datasets.may_see_reviewer_names(_user()),
    )
    return make_response(body, status)


@bp.get("/queues/<slug>/datasets")
@roles_required("ml")
def queue_datasets(slug: str) -> Response:
    """The queue's snapshots, newest first, and the form to start a new one."""
    return _render_queue_page(_queue_or_404(slug), SnapshotForm(formdata=None), {})


@bp.post("/queues/<slug>/datasets")
@roles_required("ml")
def create_dataset(slug: str) -> Response:
    """Start a snapshot, then show it building (Post/Redirect/Get); 422 with the form's
    errors next to their fields for bad input."""
    queue = _queue_or_404(slug)
    form = SnapshotForm()
    if not form.validate():  # the CSRF token
        abort(400)
    data, errors = form.request_data()
    session = db_session()
    if errors:
        return _render_queue_page(queue, form, errors, 422)
    try:
        parsed = datasets.parse_request(session, queue, _user(), data, utcnow())
        snapshot = datasets.create_snapshot(session, queue, _user(), parsed, utcnow())
    except ServiceError as exc:
        session.rollback()
        fields = {FIELD_FOR_ERROR.get(k, "format"): v for k, v in exc.fields.items()}
        return _render_queue_page(
            queue, form, fields or {"format": exc.message}, 403 if exc.status == 403 else 422
        )
    session.commit()
    if not datasets.enqueue_build(get_rq_queue(), snapshot.id):
        flash("The job queue is unreachable; the snapshot waits. Retry it in a moment.", "warning")
    return redirect(url_for(".dataset", snapshot_id=snapshot.id), 303)


@bp.get("/datasets/<int:snapshot_id>")
@roles_required("ml")
def dataset(snapshot_id: int) -> Response:
    """A snapshot: status and progress (polled while it builds), datasheet, evaluation."""
    snapshot = _snapshot_or_404(snapshot_id)
    retrain_job = request.args.get("retrain_job", "")[:64] or None
    context = {
        "snapshot": snapshot,
        "fraction": datasets.progress_fraction(snapshot),
        "now": utcnow(),
        "retrain_job": retrain_job,
        "retrain": (
            datasets.retrain_status(get_rq_queue(), retrain_job, snapshot.id)
            if retrain_job
            else None
        ),
        "candidate": model_versions.candidate_of(db_session(), snapshot),
    }
    if htmx.target == STATUS_TARGET:
        if snapshot.status not in ("queued", "running"):
            # Finished: the page gains the datasheet and downloads, so reload all of it.
            response = make_response("", 200, refresh=True)
        else:
            response = make_response(render_block("exports/dataset.html", "status", **context))
    else:
        response = make_response(render_template("exports/dataset.html", **context))
    response.vary.update(("HX-Request", "HX-Target"))
    return response


@bp.post("/datasets/<int:snapshot_id>/retry")
@roles_required("ml")
def retry_dataset(snapshot_id: int) -> Response:
    snapshot = _snapshot_or_404(snapshot_id)
    form = SnapshotForm()
    if not form.validate():
        abort(400)
    session = db_session()
    with or_flash_back_to(url_for(".dataset", snapshot_id=snapshot_id)):
        datasets.requeue_snapshot(session, snapshot, _user())
    session.commit()
    datasets.enqueue_build(get_rq_queue(), snapshot.id)
    return redirect(url_for(".dataset", snapshot_id=snapshot_id), 303)


# The element that shows a retrain job's progress; htmx polls it while the job runs.
RETRAIN_TARGET = "retrain-status"


def _retrain_block(snapshot: DatasetSnapshot, job_id: str | None) -> Response:
    status = datasets.retrain_status(get_rq_queue(), job_id, snapshot.id) if job_id else None
    if status is not None and status.state == "finished":
        # The report and the Activate button are part of the page: reload all of it.
        return make_response("", 200, refresh=True)
    body = render_block(
        "exports/dataset.html",
        "retrain",
        snapshot=snapshot,
        retrain_job=job_id,
        retrain=status,
    )
    return make_response(body)


@bp.post("/datasets/<int:snapshot_id>/retrain")
@roles_required("ml")
def retrain_dataset(snapshot_id: int) -> Response:
    """Start "Retrain from this snapshot" (an RQ job); the page then polls its progress."""
    snapshot = _snapshot_or_404(snapshot_id)
    if not SnapshotForm().validate():  # the CSRF token
        abort(400)
    session = db_session()
    with or_flash_back_to(url_for(".dataset", snapshot_id=snapshot_id)):
        job_id = datasets.request_retrain(session, get_rq_queue(), snapshot, _user(), utcnow())
    session.commit()
    if job_id is None:
        flash("The job queue is unreachable; nothing started. Try again in a moment.", "warning")
        return redirect(url_for(".dataset", snapshot_id=snapshot_id), 303)
    if htmx.target == RETRAIN_TARGET:
        return _retrain_block(snapshot, job_id)
    return redirect(url_for(".dataset", snapshot_id=snapshot_id, retrain_job=job_id), 303)


@bp.get("/datasets/<int:snapshot_id>/retrain/<job_id>")
@roles_required("ml")
def retrain_progress(snapshot_id: int, job_id: str) -> Response:
    """The retrain job's progress (the fragment polls itself); a page reload when done."""
    response = _retrain_block(_snapshot_or_404(snapshot_id), job_id[:64])
    response.vary.update(("HX-Request",))
    return response


@bp.post("/datasets/<int:snapshot_id>/activate")
@roles_required("ml")
def activate_model(snapshot_id: int) -> Response:
    """Put the model retrained on this snapshot in force: when the promotion gate passed,
    or with the "activate anyway" box ticked (audited as forced)."""
    snapshot = _snapshot_or_404(snapshot_id)
    if not SnapshotForm().validate():
        abort(400)
    session = db_session()
    force = request.form.get("force") == "1"
    with or_flash_back_to(url_for(".dataset", snapshot_id=snapshot_id)):
        model = model_versions.activate_candidate(session, snapshot, user=_user(), force=force)
    session.commit()
    flash(f"Model v{model.version} is now active for {snapshot.queue.slug}.", "success")
    return redirect(url_for(".dataset", snapshot_id=snapshot_id), 303)


@bp.get("/datasets/<int:snapshot_id>/download")
@roles_required("ml")
def download_dataset(snapshot_id: int) -> Response:
    """The dataset folder as a zip, or one of its files with `?file=`; audited."""
    snapshot = _snapshot_or_404(snapshot_id)
    session = db_session()
    settings = datasets.ExportSettings.from_config(current_app.config)
    # Not ready yet, or expired: back to the snapshot's page with the reason.
    with or_flash_back_to(url_for(".dataset", snapshot_id=snapshot_id)):
        try:
            target = datasets.download_target(
                session,
                snapshot,
                _user(),
                settings,
                utcnow(),
                file=request.args.get("file"),
                via="web",
            )
        except NotFound:
            abort(404)
    session.commit()
    return send_target(target)

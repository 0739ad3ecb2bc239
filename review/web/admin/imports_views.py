"""Admin pages for bulk imports: upload, map columns, read the report, confirm, watch.

Small files are validated and imported inside the request; larger ones by an RQ job
(workers/import_jobs.py) while the page polls its status fragment with htmx.
"""

from __future__ import annotations

from pathlib import Path

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from jinja2_fragments.flask import render_block
from sqlalchemy.orm import Session
from werkzeug import Response

from app import htmx
from models import DataImport
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import imports, pipeline
from review.services.errors import ServiceError, ValidationFailed
from review.services.import_files import file_format
from review.web.admin import bp
from review.web.admin.common import acting_user, queue_or_404
from review.web.htmx_response import make_response
from review.web.security import roles_required
from review.web.service_calls import or_flash_back_to

STATUS_TARGET = "import-status"
DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024
# Files up to this size are checked and written during the request; bigger ones by a job.
DEFAULT_INLINE_BYTES = 1024 * 1024


def _storage() -> Path:
    return imports.storage_dir(current_app.config.get("UPLOAD_DIR"), current_app.instance_path)


def _import_or_404(import_id: int) -> DataImport:
    data_import = db_session().get(DataImport, import_id)
    if data_import is None:
        abort(404)
    return data_import


@bp.route("/queues/<slug>/import", methods=["GET", "POST"])
@roles_required("admin")
def upload(slug: str) -> ResponseReturnValue:
    """Upload a CSV or JSONL file for the queue; the file goes to disk, never to memory."""
    queue = queue_or_404(slug)
    if request.method == "GET":
        return render_template("admin/import_upload.html", queue=queue, errors={})
    max_bytes = current_app.config.get("IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)
    request.max_content_length = max_bytes  # this route only: the app default is smaller
    file = request.files.get("file")
    session = db_session()
    try:
        if file is None or not file.filename:
            raise ValidationFailed("no file", {"file": "choose a CSV or JSON Lines file"})
        file_format(file.filename)  # refuses other types before anything is stored
        suffix = Path(file.filename).suffix.lower()
        path = imports.save_upload(file.stream, _storage(), suffix, max_bytes)
        try:
            data_import = imports.create_import(
                session, queue, acting_user(), path=path, original_filename=file.filename
            )
        except ServiceError:
            path.unlink(missing_ok=True)
            raise
    except ServiceError as exc:
        session.rollback()
        return render_template("admin/import_upload.html", queue=queue, errors=exc.fields), 422
    session.commit()
    return redirect(url_for(".show_import", import_id=data_import.id), 303)


@bp.get("/imports/<int:import_id>")
@roles_required("admin")
def show_import(import_id: int) -> Response:
    """The import's page, or only its status fragment when htmx polls for it."""
    return _render(_import_or_404(import_id))


def _render(
    data_import: DataImport, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    context = {
        "imp": data_import,
        "mapping": data_import.mapping,
        "errors": errors or {},
        "percent": imports.progress_percent(data_import),
        "new_rows": imports.new_rows(data_import),
    }
    if htmx.target == STATUS_TARGET:
        body = render_block("admin/import.html", "status", **context)
    else:
        body = render_template("admin/import.html", **context)
    response = make_response(body, status)
    response.vary.update(("HX-Request", "HX-Target"))
    return response


def _mapping_from_form() -> dict[str, object]:
    form = request.form
    data: dict[str, object] = {
        key: form.get(key) or None
        for key in (
            "id_column",
            "payload_json_column",
            "label_column",
            "confidence_column",
            "model_column",
            "priority_column",
            "model_name",
        )
    }
    data["payload_columns"] = form.getlist("payload_columns")
    if data["payload_json_column"]:
        data["payload_columns"] = []
    return data


def _run_or_enqueue(session: Session, data_import: DataImport, job_path: str) -> None:
    """Run the pass in this request for a small file, else hand it to a worker."""
    inline = current_app.config.get("IMPORT_INLINE_MAX_BYTES", DEFAULT_INLINE_BYTES)
    if data_import.file_size <= inline:
        if job_path == imports.VALIDATE_JOB:
            for _ in imports.validate_batches(session, data_import.id):
                session.commit()
        else:
            for pending in imports.import_batches(session, data_import.id):
                session.commit()
                if pending:
                    pipeline.enqueue_recommendations(get_rq_queue(), pending)
        session.commit()
        return
    job_id = imports.enqueue(get_rq_queue(), job_path, data_import.id)
    if job_id is None:
        data_import.status = "failed"
        data_import.error_message = (
            "the background worker could not be reached (Redis is down); try again shortly"
        )
    data_import.job_id = job_id
    session.commit()


@bp.post("/imports/<int:import_id>/mapping")
@roles_required("admin")
def set_mapping(import_id: int) -> Response:
    """Check the mapping, then validate every row. Nothing is written but the report."""
    data_import = _import_or_404(import_id)
    session = db_session()
    report = _storage() / f"import-{data_import.id}-errors.csv"
    try:
        imports.begin_validation(session, data_import, _mapping_from_form(), report, acting_user())
    except ServiceError as exc:
        session.rollback()
        data_import.mapping = {**data_import.mapping, **_mapping_from_form()}
        return _render(data_import, exc.fields, 422)
    session.commit()
    _run_or_enqueue(session, data_import, imports.VALIDATE_JOB)
    return redirect(url_for(".show_import", import_id=import_id), 303)


@bp.post("/imports/<int:import_id>/confirm")
@roles_required("admin")
def confirm(import_id: int) -> Response:
    """Write the valid rows (bad ones are skipped; they were reported)."""
    data_import = _import_or_404(import_id)
    session = db_session()
    with or_flash_back_to(url_for(".show_import", import_id=import_id)):
        imports.confirm_import(session, data_import, acting_user())
    session.commit()
    _run_or_enqueue(session, data_import, imports.IMPORT_JOB)
    return redirect(url_for(".show_import", import_id=import_id), 303)


@bp.post("/imports/<int:import_id>/cancel")
@roles_required("admin")
def cancel(import_id: int) -> Response:
    data_import = _import_or_404(import_id)
    session = db_session()
    with or_flash_back_to(url_for(".show_import", import_id=import_id)):
        imports.cancel_import(session, data_import, acting_user())
    session.commit()
    flash(f"Discarded {data_import.original_filename}; nothing was imported.", "success")
    return redirect(url_for(".index"), 303)


@bp.get("/imports/<int:import_id>/report.csv")
@roles_required("admin")
def report_csv(import_id: int) -> Response:
    """Every bad row of the last validation, as CSV (line, external_id, reason)."""
    data_import = _import_or_404(import_id)
    path = Path(data_import.report_path or "")
    if not data_import.report_path or not path.is_file():
        abort(404)
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"import-{import_id}-problems.csv",
    )

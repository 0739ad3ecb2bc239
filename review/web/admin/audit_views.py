"""Admin pages for the audit log: chain status, search, exports, and one item's trail."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from jinja2_fragments.flask import render_block
from werkzeug import Response as BaseResponse

from models.base import utcnow
from review.db import db_session, get_database
from review.redis_conn import get_rq_queue
from review.services import audit, audit_chain, audit_search, audit_verification, item_trail
from review.services.errors import NotFound, ValidationFailed
from review.web.admin import bp
from review.web.admin.common import acting_user
from review.web.security import roles_required


def _grace_seconds() -> int:
    return int(
        current_app.config.get("AUDIT_SEAL_GRACE_SECONDS", audit_chain.DEFAULT_GRACE_SECONDS)
    )


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _search_page() -> Response:
    """The search page, or its search block alone when the form or a pager asks (htmx)."""
    session = db_session()
    errors: dict[str, str] = {}
    filters, page = audit_search.AuditFilters(), audit_search.Page([], None, None)
    try:
        filters = audit_search.parse_filters(session, request.args)
        page = audit_search.search(
            session, filters, before=_cursor("before"), after=_cursor("after")
        )
    except ValidationFailed as exc:
        errors = exc.fields
    context = {
        "values": {key: request.args.get(key, "") for key in audit_search.FILTER_FIELDS},
        "errors": errors,
        "page": page,
        "args": filters.as_args(),
        "actions": audit_search.known_actions(session),
        "queues": audit_search.queue_slugs(session),
    }
    status = 422 if errors else 200
    if request.headers.get("HX-Target") == "audit-search":
        response = Response(render_block("admin/audit.html", "search", **context), status)
    else:
        response = Response(render_template("admin/audit.html", **context), status)
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


@bp.get("/audit/")
@roles_required("admin")
def audit_index() -> Response:
    """Search the log by actor, action, queue, item, time range and text in the details."""
    return _search_page()


def _render_status() -> Response:
    """The chain status: verified now if short enough, else the last background check."""
    length = audit_chain.chain_length(db_session())
    limit = current_app.config.get("AUDIT_INLINE_VERIFY_MAX", audit_verification.DEFAULT_INLINE_MAX)
    context = {"now": utcnow(), "length": length, "state": None, "report": None}
    if length <= limit:
        context["report"] = audit_chain.verify_snapshot(get_database(), _grace_seconds())
    else:
        # An empty dict, not None: the block then offers a background check.
        state = audit_verification.last(get_rq_queue()) or {}
        context["state"] = state
        context["report"] = audit_verification.last_report(state)
    if request.headers.get("HX-Target") == "chain-status":
        response = Response(render_block("admin/audit_status.html", "status", **context))
    else:
        response = Response(render_template("admin/audit_status.html", **context))
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


@bp.get("/audit/status")
@roles_required("admin")
def audit_status() -> Response:
    """Verify the whole chain: the status block (htmx) or a page of its own."""
    return _render_status()


@bp.post("/audit/verify")
@roles_required("admin")
def audit_verify() -> BaseResponse:
    """Ask a worker for a full check of a log too long to verify during a request."""
    if not audit_verification.request(get_rq_queue(), utcnow()):
        flash("Redis is unreachable: run `flask audit verify` on a server instead.", "warning")
    if request.headers.get("HX-Target") == "chain-status":
        return _render_status()
    return redirect(url_for(".audit_status"), 303)


def _exported(kind: str) -> audit_search.AuditFilters | None:
    """The export's filters, recorded in the log as an export; None if they are bad."""
    session = db_session()
    try:
        filters = audit_search.parse_filters(session, request.args)
    except ValidationFailed:
        return None
    audit.record(
        session, "audit.exported", user=acting_user(), format=kind, filters=filters.as_args()
    )
    session.commit()
    return filters


def _download(lines: Iterator[str], mimetype: str, filename: str) -> Response:
    response = Response(stream_with_context(lines), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/audit/export.jsonl")
@roles_required("admin")
def audit_export_jsonl() -> Response:
    """The filtered events as JSON Lines, oldest first, seals included; streamed."""
    filters = _exported("jsonl")
    if filters is None:
        return _search_page()

    def lines() -> Iterator[str]:
        # The view's session is closed once the view returns; the stream opens its own.
        for row in audit_search.iter_events(db_session(), filters):
            yield json.dumps(audit_search.export_record(row), ensure_ascii=False) + "\n"

    return _download(lines(), "application/x-ndjson", "audit-events.jsonl")


@bp.get("/audit/export.csv")
@roles_required("admin")
def audit_export_csv() -> Response:
    """The filtered events as CSV (details as JSON text), oldest first; streamed."""
    filters = _exported("csv")
    if filters is None:
        return _search_page()

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(audit_search.EXPORT_COLUMNS)
        for row in audit_search.iter_events(db_session(), filters):
            writer.writerow(audit_search.csv_cells(row))
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return _download(lines(), "text/csv", "audit-events.csv")


@bp.get("/audit/items/<int:item_id>")
@roles_required("admin")
def audit_item(item_id: int) -> str:
    """One item's trail: decision, policy, AI advice, webhook delivery, history, events."""
    try:
        trail = item_trail.item_trail(db_session(), item_id)
    except NotFound:
        abort(404)
    return render_template("admin/audit_item.html", trail=trail)

"""The ML page and its JSONL downloads."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, abort, render_template, request, stream_with_context

from review.db import db_session
from review.services import audit, exports, queues
from review.services.errors import NotFound
from review.web.exports import bp
from review.web.exports.overview import decision_counts
from review.web.security import logged_in_user, roles_required

JSONL_MIMETYPE = "application/x-ndjson"  # as the API's export


@bp.get("/")
@roles_required("ml")
def index() -> str:
    """Every queue with its decision and override counts and download links."""
    session = db_session()
    return render_template(
        "exports/index.html", counts=decision_counts(session, queues.list_queues(session))
    )


@bp.get("/queues/<slug>/export.jsonl")
@roles_required("ml")
def export_jsonl(slug: str) -> Response:
    """Stream the queue's decisions as JSON Lines; `?overrides_only=1` keeps overrides only."""
    session = db_session()
    try:
        queue = queues.get_queue(session, slug)
    except NotFound:
        abort(404)
    overrides_only = request.args.get("overrides_only") == "1"
    audit.record(
        session,
        "export.downloaded",
        user=logged_in_user(),
        queue_id=queue.id,
        overrides_only=overrides_only,
        via="web",
    )
    session.commit()

    # stream_with_context pushes the request's contexts again while the body is sent. The
    # view's session is closed by then (the first teardown ran when the view returned), so
    # the stream opens its own with db_session(); the teardown that runs when the last line
    # is sent, or the client goes away, closes it. (Wrapping the generator rather than
    # decorating the function does the same, and matches Flask's type hints, which give the
    # decorated function the wrong signature.)
    def lines() -> Iterator[str]:
        rows = exports.iter_decision_rows(db_session(), queue, overrides_only=overrides_only)
        for row in rows:
            yield json.dumps(row, ensure_ascii=False) + "\n"

    kind = "overrides" if overrides_only else "decisions"
    return Response(
        stream_with_context(lines()),
        mimetype=JSONL_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{queue.slug}-{kind}.jsonl"'},
    )

"""The API's endpoints. Each one parses the request, calls a service, commits, answers JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, request, stream_with_context, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import Queue
from models.base import utcnow
from review.db import db_session, get_database
from review.redis_conn import get_rq_queue
from review.services import (
    audit,
    decision_feed,
    exports,
    ingest,
    items,
    members,
    pipeline,
    queue_editing,
    queue_patching,
    queues,
    reviewing,
)
from review.services.errors import ValidationFailed
from review.web.api import bp
from review.web.api.access import member_queue, visible_item_id
from review.web.api.auth import current_api_user, token_required
from review.web.api.parsing import json_body, path_id, query_flag


def _find_queue(session: Session, slug: str) -> Queue:
    """The queue named in the URL, if the caller is a member (api/access.py): 404 / 403."""
    return member_queue(session, slug)


# --- queues -------------------------------------------------------------------------


@bp.get("/queues")
@token_required(scope="read")
def list_queues() -> dict[str, Any]:
    """The queues the caller may work on (every queue for admins and ML users)."""
    session = db_session()
    visible = members.queues_for_user(session, current_api_user())
    return {"queues": [queues.queue_as_dict(q) for q in visible]}


@bp.post("/queues")
@token_required("admin", scope="admin")
def create_queue() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a queue (admin only). Its first policy version auto-approves nothing.

    Besides the basics it takes `display_fields` (payload keys reviewers see first) and
    `escalation_queue`; a new queue has no decisions, so nothing can be retired yet.
    """
    session = db_session()
    body = json_body()
    if isinstance(body, dict) and body.get("retired_labels"):
        raise ValidationFailed(
            "a new queue has no retired labels",
            {"retired_labels": "must be empty for a new queue"},
        )
    queue, _changes = queue_editing.create_queue(session, body, current_api_user())
    session.commit()
    location = url_for(".get_queue", slug=queue.slug)
    return queues.queue_as_dict(queue), 201, {"Location": location}


@bp.get("/queues/<slug>")
@token_required(scope="read")
def get_queue(slug: str) -> dict[str, Any]:
    return queues.queue_as_dict(_find_queue(db_session(), slug))


@bp.patch("/queues/<slug>")
@token_required("admin", scope="admin")
def patch_queue(slug: str) -> dict[str, Any]:
    """Change some of a queue's settings (admin only); fields left out keep their values.

    A label in use leaves `labels` only when named in `retired_labels` (see
    services.queue_patching); otherwise 422 names `labels` and nothing changes.
    """
    session = db_session()
    queue = _find_queue(session, slug)
    queue_patching.patch_queue(session, queue, json_body(), current_api_user())
    session.commit()
    return queues.queue_as_dict(queue)


# --- policies -----------------------------------------------------------------------


@bp.get("/queues/<slug>/policy")
@token_required(scope="read")
def get_policy(slug: str) -> dict[str, Any]:
    session = db_session()
    return queues.policy_as_dict(queues.current_policy(session, _find_queue(session, slug)))


@bp.put("/queues/<slug>/policy")
@token_required("policy_owner", scope="decide")
def put_policy(slug: str) -> tuple[dict[str, Any], int]:
    """Store a new policy version (policy owners and admins); it applies to the next routing."""
    session = db_session()
    queue = _find_queue(session, slug)
    version = queues.create_policy_version(session, queue, json_body(), current_api_user())
    session.commit()
    return queues.policy_as_dict(version), 201


# --- items --------------------------------------------------------------------------


def _ingest_and_commit(
    session: Session, queue: Queue, inputs: list[ingest.ItemInput]
) -> list[ingest.IngestResult]:
    """Ingest and commit, retrying while a concurrent request inserted one of the same
    external_ids.

    Both requests may find an external_id absent before either commits; the unique key
    then rejects the later insert. The next pass sees the winner's row and answers as for
    any re-ingest: the existing item, or a Conflict if the payloads differ. Each external_id
    can collide at most once (afterwards its row is seen), so a batch needs at most one pass
    more than it has items (found by tests/faults/test_concurrent_ingest.py).
    """
    for _ in range(len(inputs)):
        try:
            results = ingest.ingest(session, queue, inputs, current_api_user())
            session.commit()
            return results
        except IntegrityError:
            session.rollback()
    results = ingest.ingest(session, queue, inputs, current_api_user())
    session.commit()
    return results


@bp.post("/queues/<slug>/items")
@token_required("policy_owner", scope="ingest")
def ingest_items(slug: str) -> tuple[dict[str, Any], int]:
    """Accept one item, or `{"items": [...]}` with up to 1,000.

    Allowed roles: admin and policy_owner. There is no ingest-only role yet, so an upstream
    system posts with a token of a policy owner (or admin) account.

    202 when anything new was stored, 200 when every item already existed with the same
    payload (a retried request), 409 when an external_id exists with a different payload.
    New items without a recommendation are handed to the workers after the commit.
    """
    session = db_session()
    queue = _find_queue(session, slug)
    inputs, _was_batch = ingest.parse_ingest_body(json_body(), queue)
    results = _ingest_and_commit(session, queue, inputs)
    waiting = [r.item.id for r in results if r.created and r.item.status == "pending"]
    if waiting:
        pipeline.enqueue_recommendations(get_rq_queue(), waiting)
    body = {
        "items": [
            {"id": r.item.id, "external_id": r.item.external_id, "status": r.item.status}
            for r in results
        ]
    }
    return body, 202 if any(r.created for r in results) else 200


@bp.get("/items/<item_id>")
@token_required(scope="read")
def get_item(item_id: str) -> dict[str, Any]:
    session = db_session()
    found = visible_item_id(session, path_id(item_id, "item"))
    return items.item_as_dict(items.get_item(session, found))


@bp.post("/items/<item_id>/decision")
@token_required("reviewer", scope="decide")
def decide(item_id: str) -> dict[str, Any]:
    """Approve or override an item awaiting review (reviewers and admins). 409 if too late."""
    session = db_session()
    found = visible_item_id(session, path_id(item_id, "item"))
    review = reviewing.decide(session, found, current_api_user(), json_body())
    session.commit()
    return items.item_as_dict(items.get_item(session, review.item_id))


@bp.get("/queues/<slug>/decisions")
@token_required(scope="read")
def list_decisions(slug: str) -> dict[str, Any]:
    """The queue's final decisions, oldest first, after the `after` cursor: for systems
    that poll (services/decision_feed.py says when a decision is listed)."""
    session = db_session()
    queue = _find_queue(session, slug)
    limit = decision_feed.parse_limit(request.args.get("limit"))
    page = decision_feed.decisions_page(
        session, queue, request.args.get("after"), limit, utcnow(), current_app.config["SECRET_KEY"]
    )
    return {
        "decisions": page.decisions,
        "cursor": page.cursor,
        "has_more": page.has_more,
        "settled_before": page.settled_before.isoformat(),
    }


# --- exports ------------------------------------------------------------------------


def _decision_lines(
    session_factory: sessionmaker[Session], queue_id: int, overrides_only: bool
) -> Iterator[str]:
    """The queue's decisions as JSON lines, read in batches through a session of its own.

    The request's session is closed when the view returns, before the first line is sent,
    so the stream opens its own and closes it when the stream ends or the client leaves.
    """
    with session_factory() as session:
        queue = session.get_one(Queue, queue_id)
        rows = exports.iter_decision_rows(session, queue, overrides_only=overrides_only)
        try:
            for row in rows:
                yield json.dumps(row, ensure_ascii=False) + "\n"
        finally:
            rows.close()  # closes the cursor while the session still holds its connection


@bp.get("/queues/<slug>/export.jsonl")
@token_required("ml", scope="export")
def export_decisions(slug: str) -> Response:
    """Stream the queue's human decisions as JSON Lines (ML and admins).

    Errors (unknown queue, bad overrides_only) are found before the stream starts, so they
    are ordinary JSON errors with a 4xx status.
    """
    overrides_only = query_flag("overrides_only")
    session = db_session()
    queue = _find_queue(session, slug)
    audit.record(
        session,
        "export.downloaded",
        user=current_api_user(),
        queue_id=queue.id,
        overrides_only=overrides_only,
        via="api",
    )
    session.commit()
    lines = _decision_lines(get_database().session_factory, queue.id, overrides_only)
    response = Response(stream_with_context(lines), mimetype="application/x-ndjson")
    # The slug matched SLUG_RE ([a-z0-9-]), so it is safe inside the quoted filename.
    response.headers["Content-Disposition"] = f'attachment; filename="{queue.slug}-decisions.jsonl"'
    return response

"""Reviewer actions besides deciding: skip, escalate, undo, and the lease's heartbeat and
release. Each checks membership, commits, and answers with the next item (or a status)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from werkzeug import Response

from models import Review
from review.db import db_session
from review.services import review_actions, reviewing
from review.services.errors import Conflict, ValidationFailed
from review.web.queue import bp
from review.web.queue.access import current, queue_and_item_or_404
from review.web.queue.forms import EscalateForm, LeaseForm, SkipForm, form_errors
from review.web.queue.rendering import render_lineup
from review.web.queue.routes import next_item
from review.web.security import roles_required


@bp.post("/queues/<slug>/items/<int:item_id>/skip")
@roles_required("reviewer")
def skip(slug: str, item_id: int) -> Response:
    """Pass on the item with a reason; the others get it first (it returns once the
    reviewer has nothing else)."""
    queue, item = queue_and_item_or_404(slug, item_id)
    session = db_session()
    form = SkipForm()
    try:
        review_actions.skip(
            session, item.id, current(), form.skip_reason.data, form.skip_comment.data
        )
    except ValidationFailed as exc:
        session.rollback()
        return render_lineup(
            queue, item, errors=form_errors(exc.fields), open_panel="skip", status=422
        )
    except Conflict as exc:
        session.rollback()
        return next_item(queue, notice=f"Item {item.external_id} was not skipped: {exc.message}.")
    session.commit()
    return next_item(
        queue,
        saved=f"Skipped {item.external_id}: the others get it first; "
        "it comes back to you when nothing else is waiting.",
    )


@bp.post("/queues/<slug>/items/<int:item_id>/escalate")
@roles_required("reviewer")
def escalate(slug: str, item_id: int) -> Response:
    """Send the item to the queue's second-level queue for a senior reviewer."""
    queue, item = queue_and_item_or_404(slug, item_id)
    external_id = item.external_id
    session = db_session()
    form = EscalateForm()
    try:
        target = review_actions.escalate(session, item.id, current(), form.escalate_comment.data)
    except ValidationFailed as exc:
        session.rollback()
        return render_lineup(
            queue, item, errors=form_errors(exc.fields), open_panel="escalate", status=422
        )
    except Conflict as exc:
        session.rollback()
        return next_item(queue, notice=f"Item {external_id} was not escalated: {exc.message}.")
    session.commit()
    return next_item(queue, saved=f"Escalated {external_id} to {target.name}.")


@bp.post("/queues/<slug>/items/<int:item_id>/undo")
@roles_required("reviewer")
def undo(slug: str, item_id: int) -> Response:
    """Take back one's own decision within the undo window; the item is shown again."""
    queue, item = queue_and_item_or_404(slug, item_id)
    LeaseForm()  # CSRF is checked globally; the form documents that nothing else is sent
    session = db_session()
    # What was chosen, so that the form comes back with it: an undo is mostly for a slip
    # (a wrong label, a wrong reason), fixed by changing one field, not by starting over.
    undone = _decision_values(item.review)
    try:
        item = review_actions.undo(session, item.id, current(), current_app.config["LEASE_SECONDS"])
    except Conflict as exc:
        session.rollback()
        return next_item(queue, notice=f"Could not undo {item.external_id}: {exc.message}.")
    session.commit()
    return next_item(
        queue, saved=f"Undone: {item.external_id} is back with you.", show=item, decision=undone
    )


def _decision_values(review: Review | None) -> dict[str, Any] | None:
    """A review as the decision form's values (DecisionForm.decision_data's shape)."""
    if review is None:
        return None
    overridden = review.action == "overridden"
    return {
        "action": "override" if overridden else "approve",
        "label": review.final_label if overridden else None,
        "reason_code": review.reason_code,
        "comment": review.comment or "",
    }


def _lease_status(held: bool) -> Response:
    if held:
        return Response(status=204)
    response = jsonify(
        {
            "error": {
                "code": "lease_lost",
                "message": "you no longer hold this item",
                "fields": {"item": "not leased to you"},
            }
        }
    )
    response.status_code = 409
    return response


@bp.post("/queues/<slug>/items/<int:item_id>/heartbeat")
@roles_required("reviewer")
def heartbeat(slug: str, item_id: int) -> Response:
    """The open review page keeps its lease alive: 204, or 409 if the lease is gone."""
    queue, item = queue_and_item_or_404(slug, item_id)
    session = db_session()
    held = reviewing.heartbeat(session, item.id, current(), current_app.config["LEASE_SECONDS"])
    session.commit()
    return _lease_status(held)


@bp.post("/queues/<slug>/items/<int:item_id>/release")
@roles_required("reviewer")
def release(slug: str, item_id: int) -> Response:
    """The review page was closed: the item goes back to the queue at once, unless a later
    load of the page (a reload) has taken it over. The form names the page (`page`)."""
    queue, item = queue_and_item_or_404(slug, item_id)
    session = db_session()
    # An id this server never gave out matches no lease's stamp: as if the page had none.
    held = reviewing.release_lease(session, item.id, current(), request.form.get("page"))
    session.commit()
    return _lease_status(held)

"""Reviewer pages. Each view parses the request, calls a service, commits and renders."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_htmx import make_response
from flask_login import current_user, login_required
from jinja2_fragments.flask import render_block
from werkzeug import Response

from app import htmx
from models import Item, Queue, User
from models.base import utcnow
from review.db import db_session
from review.services import queues, reviewing
from review.services.errors import Conflict, NotFound, ValidationFailed
from review.web.auth.navigation import home_url
from review.web.queue import bp
from review.web.queue.forms import DecisionForm
from review.web.queue.overview import queue_counts
from review.web.queue.payload import MAX_DEPTH, payload_view
from review.web.security import has_role, roles_required

# The element that holds the item under review. A request that targets it gets just that
# fragment (the `item` block of queue/review.html); anything else gets the whole page.
ITEM_TARGET = "review-item"

# Why there is no recommendation, in words a reviewer understands (keyed by Item.ai_status).
NO_RECOMMENDATION_REASONS = {
    None: "no recommendation has been made for this item",
    "ok": "the recommendation is missing",
    "none": "the recommender had nothing to suggest (for example, it is not trained yet)",
    "unavailable": "the AI service could not be reached",
    "budget_exhausted": "this queue's AI budget is used up",
}


def _user() -> User:
    return current_user._get_current_object()  # the User row, not Flask-Login's proxy


def _queue_or_404(slug: str) -> Queue:
    try:
        return queues.get_queue(db_session(), slug)
    except NotFound:
        abort(404)


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """Every queue with what awaits review; people without a queue role go to their home."""
    if not has_role(current_user, "reviewer", "policy_owner"):
        return redirect(home_url(current_user))
    session = db_session()
    counts = queue_counts(session, queues.list_queues(session), utcnow())
    return render_template("queue/index.html", counts=counts)


@bp.get("/queues/<slug>/review")
@roles_required("reviewer")
def review(slug: str):  # type: ignore[no-untyped-def]
    """Lease the next item to the reviewer (or resume their lease) and show it."""
    queue = _queue_or_404(slug)
    session = db_session()
    item = reviewing.claim_next(session, queue, _user(), current_app.config["LEASE_SECONDS"])
    session.commit()
    return _render_review(queue, item)


@bp.post("/queues/<slug>/items/<int:item_id>/decision")
@roles_required("reviewer")
def decision(slug: str, item_id: int):  # type: ignore[no-untyped-def]
    """Record a decision, then show the next item (htmx) or redirect to it (plain form)."""
    queue = _queue_or_404(slug)
    session = db_session()
    item = session.get(Item, item_id)
    if item is None or item.queue_id != queue.id:
        abort(404)
    form = DecisionForm()
    notice, saved = None, None
    try:
        review_row = reviewing.decide(session, item.id, _user(), form.decision_data())
    except ValidationFailed as exc:
        session.rollback()
        return _render_review(queue, item, form=form, errors=exc.fields, status=422)
    except Conflict as exc:
        session.rollback()
        notice = f"Item {item.external_id} was not saved: {exc.message}."
    else:
        saved = f"Saved {item.external_id}: {review_row.action} as “{review_row.final_label}”."
        session.commit()
    if htmx.target != ITEM_TARGET:
        # Post/Redirect/Get for browsers without JavaScript.
        flash(notice or saved or "", "warning" if notice else "success")
        return _vary(redirect(url_for(".review", slug=queue.slug), 303))
    next_item = reviewing.claim_next(session, queue, _user(), current_app.config["LEASE_SECONDS"])
    session.commit()
    return _render_review(queue, next_item, notice=notice, saved=saved)


def _vary(response: Response) -> Response:
    # One URL, two shapes (page or fragment): caches must key on the htmx headers.
    response.vary.update(("HX-Request", "HX-Target"))
    return response


def _render_review(
    queue: Queue,
    item: Item | None,
    *,
    form: DecisionForm | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    saved: str | None = None,
    status: int = 200,
) -> Response:
    """The review page, or only its item fragment when htmx asks for the item element."""
    context = _review_context(queue, item, form or DecisionForm(formdata=None), errors or {})
    context.update(notice=notice, saved=saved)
    if htmx.target == ITEM_TARGET:
        body = render_block("queue/review.html", "item", **context)
    else:
        body = render_template("queue/review.html", **context)
    return _vary(make_response(body, status))


def _review_context(
    queue: Queue, item: Item | None, form: DecisionForm, errors: dict[str, str]
) -> dict[str, Any]:
    recommendation = item.recommendation if item is not None else None
    values = form.decision_data()
    if values["action"] is None:
        # Without an AI label there is nothing to approve, so start in override mode.
        values["action"] = "approve" if recommendation is not None else "override"
    return {
        "queue": queue,
        "item": item,
        "form": form,
        "errors": errors,
        "values": values,
        "recommendation": recommendation,
        "payload": payload_view(item.payload) if item is not None else None,
        "max_depth": MAX_DEPTH,
        "no_recommendation_reason": NO_RECOMMENDATION_REASONS.get(
            item.ai_status if item is not None else None, NO_RECOMMENDATION_REASONS[None]
        ),
    }

"""Reviewer pages: the queue list and the review loop. Each view parses the request, calls a
service, commits and renders. Every queue page checks membership (access.py)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug import Response

from models import Item, Queue
from models.base import utcnow
from review.db import db_session
from review.services import members, reviewer_stats, reviewing
from review.services.errors import Conflict, ValidationFailed
from review.web.auth.navigation import home_url
from review.web.queue import bp
from review.web.queue.access import current, member_queue_or_404, queue_and_item_or_404
from review.web.queue.forms import DecisionForm, form_errors
from review.web.queue.overview import queue_counts
from review.web.queue.rendering import render_lineup, vary, wants_fragment
from review.web.security import has_role, login_required, roles_required


@bp.get("/")
@login_required
def index() -> str | Response:
    """The user's queues with what awaits review; people without a queue role go home."""
    if not has_role(current_user, "reviewer", "policy_owner"):
        return redirect(home_url(current_user))
    session = db_session()
    now = utcnow()
    counts = queue_counts(session, members.queues_for_user(session, current()), now)
    stats = reviewer_stats.reviewer_stats(session, current(), now)
    return render_template("queue/index.html", counts=counts, stats=stats)


@bp.get("/queues/<slug>/review")
@roles_required("reviewer")
def review(slug: str) -> Response:
    """Lease the next item to the reviewer (or resume their lease) and show it."""
    return render_lineup(member_queue_or_404(slug))


@bp.post("/queues/<slug>/items/<int:item_id>/decision")
@roles_required("reviewer")
def decision(slug: str, item_id: int) -> Response:
    """Record a decision (lease holder only, once), then show the next item."""
    queue, item = queue_and_item_or_404(slug, item_id)
    session = db_session()
    form = DecisionForm()
    try:
        review_row = reviewing.decide(
            session,
            item.id,
            current(),
            form.decision_data(),
            idempotency_key=form.idempotency_key.data or None,
            require_lease=True,
        )
    except ValidationFailed as exc:
        session.rollback()
        return render_lineup(queue, item, form=form, errors=form_errors(exc.fields), status=422)
    except Conflict as exc:
        session.rollback()
        return next_item(queue, notice=f"Item {item.external_id} was not saved: {exc.message}.")
    saved = f"Saved {item.external_id}: {review_row.action} as “{review_row.final_label}”."
    # next_item commits the decision together with the lease on the next item: one
    # transaction, one commit, in the round trip a reviewer waits for. Only a saved decision
    # may leave the next item to the client's preview (anything else redraws it in full).
    return next_item(queue, saved=saved, undo_of=review_row, preview_may_stay=True)


def next_item(
    queue: Queue,
    *,
    notice: str | None = None,
    saved: str | None = None,
    undo_of: object = None,
    show: Item | None = None,
    preview_may_stay: bool = False,
    decision: dict[str, Any] | None = None,
) -> Response:
    """After an action: the next item as a fragment (htmx), or a redirect to it (plain form).
    `preview_may_stay`: see rendering.render_lineup. `decision`: what the decision form
    starts with (an undone decision's choices), by default nothing chosen.

    Commits the session, with whatever the action left in it.
    """
    session = db_session()
    if not wants_fragment():
        session.commit()
        # Post/Redirect/Get for browsers without JavaScript.
        flash(notice or saved or "", "warning" if notice else "success")
        return vary(redirect(url_for(".review", slug=queue.slug), 303))
    # The action commits with the leases on the items shown and prefetched (render_lineup).
    return render_lineup(
        queue,
        show,
        preview_may_stay=preview_may_stay,
        notice=notice,
        saved=saved,
        undo_of=undo_of,
        decision=decision,
    )


@bp.get("/queues/<slug>/review/status")
@roles_required("reviewer")
def review_status(slug: str) -> str:
    """Where the reviewer stands: today's numbers (polled by the review page)."""
    member_queue_or_404(slug)
    stats = reviewer_stats.reviewer_stats(db_session(), current(), utcnow())
    return render_template("queue/_my_numbers.html", stats=stats)
